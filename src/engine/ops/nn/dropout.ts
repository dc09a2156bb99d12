// Inverted dropout: in training, zero each element with probability p and scale survivors by 1/(1 − p).

import { type FloatArray } from '../../dtype.js';
import { defaultGenerator, type Generator } from '../../random.js';
import { Tensor } from '../../tensor.js';
import { mul } from '../elementwise.js';
import { checkFloat } from './common.js';

/** x itself in eval mode or when p = 0; otherwise x · mask with mask ∈ {0, 1/(1 − p)} drawn from gen. */
export function dropout(x: Tensor, p: number, training: boolean, gen: Generator = defaultGenerator): Tensor {
  checkFloat('dropout', { input: x });
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: probability must be in [0, 1], got ${p} (input ${x})`);
  if (!training || p === 0) return x;
  const mask = Tensor.empty(x.shape, x.dtype);
  const md = mask.data as FloatArray;
  const keep = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < md.length; i++) md[i] = gen.uniform() < p ? 0 : keep;
  return mul(x, mask);
}
