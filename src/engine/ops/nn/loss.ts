// Regression losses with PyTorch's reductions (inputs broadcast like torch.nn.functional does).

import { fmt } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import { abs, mul, sub } from '../elementwise.js';
import { mean, sum } from '../reduce.js';
import { checkFloat } from './common.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(op: string, t: Tensor, reduction: Reduction, a: Tensor, b: Tensor): Tensor {
  switch (reduction) {
    case 'mean': return mean(t);
    case 'sum': return sum(t);
    case 'none': return t;
    default: throw new RangeError(`${op}: unknown reduction '${reduction as string}' for ${fmt(a.shape)} and ${fmt(b.shape)} (use 'mean', 'sum' or 'none')`);
  }
}

/** F.mse_loss: (a − b)², reduced. */
export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkFloat('mseLoss', { input: a, target: b });
  const d = sub(a, b);
  return reduce('mseLoss', mul(d, d), reduction, a, b);
}

/** F.l1_loss: |a − b|, reduced (gradient sign(a − b), 0 where equal). */
export function l1Loss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  checkFloat('l1Loss', { input: a, target: b });
  return reduce('l1Loss', abs(sub(a, b)), reduction, a, b);
}
