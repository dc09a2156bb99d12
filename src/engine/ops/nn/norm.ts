// Normalisation: group norm (optionally fused with SiLU), layer norm over the last dim, batch norm.

import { noGrad, record } from '../../autograd.js';
import { allocData, type FloatArray } from '../../dtype.js';
import { K } from '../../kernels/index.js';
import { fmt, numel } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { add, mul, rsqrt, sub } from '../elementwise.js';
import { mean, variance } from '../reduce.js';
import { copyInto, reshape } from '../shape.js';
import { checkFloat, dense, denseOrNull, positiveInt } from './common.js';

function checkAffine(op: string, t: Tensor | null, name: string, n: number, x: Tensor): void {
  if (t && (t.ndim !== 1 || t.shape[0] !== n)) {
    throw new RangeError(`${op}: ${name} ${fmt(t.shape)} does not match input ${fmt(x.shape)} (expected [${n}])`);
  }
}

function empty(x: Tensor, n: number): FloatArray {
  return allocData(x.dtype, n) as FloatArray;
}

/**
 * F.group_norm(x, groups, weight, bias, eps) on x [N, C, ...] (statistics per sample over C/groups
 * channels and all spatial positions), followed by SiLU when `silu` (GroupNorm → SiLU fused).
 */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps: number, silu = false): Tensor {
  checkFloat('groupNorm', { input: x, weight, bias });
  if (x.ndim < 2) throw new RangeError(`groupNorm: input must be [N, C, ...], got ${fmt(x.shape)}`);
  const N = x.shape[0], C = x.shape[1], HW = numel(x.shape.slice(2));
  const G = positiveInt('groupNorm', 'groups', groups);
  if (C % G !== 0) throw new RangeError(`groupNorm: ${C} channels of input ${fmt(x.shape)} cannot be split into ${G} groups`);
  checkAffine('groupNorm', weight, 'weight', C, x);
  checkAffine('groupNorm', bias, 'bias', C, x);
  const xd = dense(x), gd = denseOrNull(weight), bd = denseOrNull(bias);
  const mu = empty(x, N * G), rs = empty(x, N * G);
  const out = Tensor.uninit(x.shape, x.dtype);
  K.groupNormForward(xd, N, C, HW, G, eps, gd, bd, silu, out.data as FloatArray, mu, rs);
  return record(out, silu ? 'groupNormSilu' : 'groupNorm', [x, weight, bias], (g) => {
    const gx = Tensor.uninit(x.shape, x.dtype);
    const gw = weight && weight.requiresGrad ? Tensor.uninit([C], x.dtype) : null;
    const gb = bias && bias.requiresGrad ? Tensor.uninit([C], x.dtype) : null;
    K.groupNormBackward(xd, dense(g), N, C, HW, G, gd, bd, silu, mu, rs, gx.data as FloatArray,
      gw ? (gw.data as FloatArray) : null, gb ? (gb.data as FloatArray) : null);
    return [x.requiresGrad ? gx : null, gw, gb];
  });
}

/** F.layer_norm(x, [D], weight, bias, eps): normalises over the last dim D; weight/bias [D]. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  checkFloat('layerNorm', { input: x, weight, bias });
  if (x.ndim < 1) throw new RangeError(`layerNorm: input must have at least one dim, got ${fmt(x.shape)}`);
  const cols = x.shape[x.ndim - 1], rows = cols === 0 ? 0 : x.size / cols;
  checkAffine('layerNorm', weight, 'weight', cols, x);
  checkAffine('layerNorm', bias, 'bias', cols, x);
  const xd = dense(x), gd = denseOrNull(weight);
  const mu = empty(x, rows), rs = empty(x, rows);
  const out = Tensor.uninit(x.shape, x.dtype);
  K.layerNormForward(xd, rows, cols, eps, gd, denseOrNull(bias), out.data as FloatArray, mu, rs);
  return record(out, 'layerNorm', [x, weight, bias], (g) => {
    const gx = Tensor.uninit(x.shape, x.dtype);
    const gw = weight && weight.requiresGrad ? Tensor.uninit([cols], x.dtype) : null;
    const gb = bias && bias.requiresGrad ? Tensor.uninit([cols], x.dtype) : null;
    K.layerNormBackward(xd, dense(g), rows, cols, gd, mu, rs, gx.data as FloatArray,
      gw ? (gw.data as FloatArray) : null, gb ? (gb.data as FloatArray) : null);
    return [x.requiresGrad ? gx : null, gw, gb];
  });
}

/**
 * F.batch_norm on x [N, C, ...]. Training (or no running stats given): normalises with the batch mean and
 * biased variance per channel and, when running stats are given, updates them in place:
 * running = (1 − momentum)·running + momentum·batch (unbiased variance). Eval: uses the running stats.
 */
export function batchNorm(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null,
  training: boolean, momentum = 0.1, eps = 1e-5,
): Tensor {
  checkFloat('batchNorm', { input: x, runningMean, runningVar, weight, bias });
  if (x.ndim < 2) throw new RangeError(`batchNorm: input must be [N, C, ...], got ${fmt(x.shape)}`);
  const C = x.shape[1];
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    checkAffine('batchNorm', t, name, C, x);
  }
  if ((runningMean === null) !== (runningVar === null)) throw new RangeError('batchNorm: give both runningMean and runningVar, or neither');
  const bshape = x.shape.map((s, i) => (i === 1 ? s : 1));
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const count = x.size / Math.max(C, 1);
  let y: Tensor;
  if (training || !runningMean || !runningVar) {
    if (count <= 1) throw new RangeError(`batchNorm: expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
    const m = mean(x, axes, true);
    const v = variance(x, axes, true, false);
    y = mul(sub(x, m), rsqrt(add(v, eps)));
    if (training && runningMean && runningVar) {
      noGrad(() => {
        const newMean = add(mul(runningMean, 1 - momentum), mul(reshape(m, [C]), momentum));
        const newVar = add(mul(runningVar, 1 - momentum), mul(reshape(v, [C]), (momentum * count) / (count - 1)));
        copyInto(runningMean, newMean);
        copyInto(runningVar, newVar);
      });
    }
  } else {
    y = mul(sub(x, reshape(runningMean, bshape)), rsqrt(add(reshape(runningVar, bshape), eps)));
  }
  if (weight) y = mul(y, reshape(weight, bshape));
  if (bias) y = add(y, reshape(bias, bshape));
  return y;
}
