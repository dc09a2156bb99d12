// Parameter initialisation, following torch.nn.init: every function fills a float tensor in place
// (through its storage, honouring offset/strides) from a seedable generator and returns it.
// The default generator is the engine's process-wide one (seed it with T.manualSeed), so
// `T.manualSeed(0); new Linear(4, 3)` is reproducible; pass `gen` to use a private stream.

import * as T from '../engine/index.js';

type Gen = T.Generator;

let skipping = 0;

/**
 * Build modules without initialising their weights (they stay zero): for models whose weights are
 * about to be loaded from a checkpoint (random fills are skipped; constant fills still apply), where PyTorch-style init of hundreds of millions of values
 * would be wasted time (13 s for a 274 M-parameter UNet).
 */
export function skipInit<R>(fn: () => R): R {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

/** Visit every element position of t in row-major order and store f(i) there. */
function fill(t: T.Tensor, f: (i: number) => number, what: string, random = true): T.Tensor {
  if (random && skipping > 0) return t; // constants are cheap and still applied
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`init.${what}: expected a float tensor, got ${t.dtype} [${t.shape}]`);
  const d = t.data as Float32Array | Float64Array;
  if (t.isContiguous()) {
    for (let i = 0, n = t.size; i < n; i++) d[t.offset + i] = f(i);
    return t;
  }
  T.forEachOffset(t.shape, t.strides, t.offset, (i, p) => (d[p] = f(i)));
  return t;
}

export function constant_(t: T.Tensor, value: number): T.Tensor {
  return fill(t, () => value, 'constant_', false);
}
export const zeros_ = (t: T.Tensor) => constant_(t, 0);
export const ones_ = (t: T.Tensor) => constant_(t, 1);

/** U(lo, hi). */
export function uniform_(t: T.Tensor, lo = 0, hi = 1, gen: Gen = T.defaultGenerator): T.Tensor {
  return fill(t, () => lo + (hi - lo) * gen.uniform(), 'uniform_');
}

/** N(mean, std²). */
export function normal_(t: T.Tensor, mean = 0, std = 1, gen: Gen = T.defaultGenerator): T.Tensor {
  return fill(t, () => mean + std * gen.normal(), 'normal_');
}

/** (fan_in, fan_out) of a weight: dim 1 and dim 0 times the receptive field (PyTorch's convention). */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new RangeError(`init: fan in and fan out need at least 2 dims, got [${shape}]`);
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i];
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv2d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
  }
}

export interface KaimingOptions {
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
  gen?: Gen;
}

/** U(-b, b) with b = gain·√(3 / fan). With a = √5 (Linear/Conv default) this is b = 1/√fan_in. */
export function kaimingUniform_(t: T.Tensor, opts: KaimingOptions = {}): T.Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const bound = Math.sqrt(3) * (gain / Math.sqrt(fan));
  return uniform_(t, -bound, bound, opts.gen);
}

/** N(0, std²) with std = gain / √fan. */
export function kaimingNormal_(t: T.Tensor, opts: KaimingOptions = {}): T.Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(fan), opts.gen);
}

/** U(-b, b) with b = gain·√(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: T.Tensor, gain = 1, gen: Gen = T.defaultGenerator): T.Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, gen);
}

/** N(0, std²) with std = gain·√(2 / (fan_in + fan_out)). */
export function xavierNormal_(t: T.Tensor, gain = 1, gen: Gen = T.defaultGenerator): T.Tensor {
  const { fanIn, fanOut } = fans(t.shape);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), gen);
}
