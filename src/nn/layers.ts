// Standard layers with PyTorch's field names (so state-dict keys match checkpoints) and PyTorch's
// default initialisation, drawn from a seedable generator (T.defaultGenerator unless `gen` is given):
//   Linear / Conv2d weight: kaiming_uniform(a=√5) = U(±1/√fan_in); bias: U(±1/√fan_in)
//   Embedding: N(0, 1); norms: weight 1, bias 0; BatchNorm running_mean 0, running_var 1.

import * as T from '../engine/index.js';
import { Buffer, Layer, Parameter } from './module.js';
import * as init from './init.js';

export interface LayerOptions {
  /** Random stream for the initial weights (default: the engine's process-wide generator). */
  gen?: T.Generator;
  /** Element type of parameters and buffers (float64 for gradient checks). */
  dtype?: T.FloatDType;
}

/** A Parameter of the given shape, filled by `fill`. */
function param(shape: number[], dtype: T.FloatDType | undefined, fill: (t: T.Tensor) => void): Parameter {
  const t = T.empty(shape, dtype ?? 'float32');
  fill(t);
  const p = new Parameter(t);
  t.dispose(); // p holds its own reference to the storage
  return p;
}

function buffer(t: T.Tensor): Buffer {
  const b = new Buffer(t);
  t.dispose();
  return b;
}

function checkInt(v: number, what: string, layer: string): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${layer}: ${what} must be a positive integer, got ${v}`);
}

// ---- affine maps ----------------------------------------------------------------------------------------

/** y = x Wᵀ + b over the last dim. weight [out, in], bias [out]. */
export class Linear extends Layer {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly in_features: number, readonly out_features: number, bias = true, opts: LayerOptions = {}) {
    super();
    checkInt(in_features, 'in_features', 'Linear');
    checkInt(out_features, 'out_features', 'Linear');
    const gen = opts.gen ?? T.defaultGenerator;
    this.weight = param([out_features, in_features], opts.dtype, (t) => init.kaimingUniform_(t, { a: Math.sqrt(5), gen }));
    const bound = 1 / Math.sqrt(in_features);
    this.bias = bias ? param([out_features], opts.dtype, (t) => init.uniform_(t, -bound, bound, gen)) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    return T.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dOptions extends LayerOptions {
  /** One stride for both axes or [vertical, horizontal]. */
  stride?: number | [number, number];
  /** Same on all sides, [vertical, horizontal] (PyTorch's tuple) or [top, bottom, left, right]. */
  padding?: number | [number, number] | [number, number, number, number];
  bias?: boolean;
}

/** 2-D cross-correlation over NCHW. weight [out, in, kh, kw], bias [out]. */
export class Conv2d extends Layer {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernel_size: [number, number];
  readonly stride: number | [number, number];
  readonly padding: number | [number, number, number, number];
  constructor(readonly in_channels: number, readonly out_channels: number, kernel: number | [number, number], opts: Conv2dOptions = {}) {
    super();
    checkInt(in_channels, 'in_channels', 'Conv2d');
    checkInt(out_channels, 'out_channels', 'Conv2d');
    this.kernel_size = typeof kernel === 'number' ? [kernel, kernel] : [kernel[0], kernel[1]];
    this.kernel_size.forEach((k) => checkInt(k, 'kernel size', 'Conv2d'));
    const st = opts.stride ?? 1;
    this.stride = typeof st === 'number' ? st : [st[0], st[1]];
    (typeof st === 'number' ? [st] : st).forEach((s) => checkInt(s, 'stride', 'Conv2d'));
    const p = opts.padding ?? 0;
    this.padding = typeof p === 'number' ? p : p.length === 2 ? [p[0], p[0], p[1], p[1]] : [p[0], p[1], p[2], p[3]];
    const gen = opts.gen ?? T.defaultGenerator;
    const [kh, kw] = this.kernel_size;
    this.weight = param([out_channels, in_channels, kh, kw], opts.dtype, (t) => init.kaimingUniform_(t, { a: Math.sqrt(5), gen }));
    const bound = 1 / Math.sqrt(in_channels * kh * kw);
    this.bias = (opts.bias ?? true) ? param([out_channels], opts.dtype, (t) => init.uniform_(t, -bound, bound, gen)) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.in_channels) {
      throw new RangeError(`Conv2d(${this.in_channels}→${this.out_channels}): expected input [N, ${this.in_channels}, H, W], got [${x.shape}]`);
    }
    return T.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

/** Rows of weight [num_embeddings, embedding_dim] picked by integer indices. */
export class Embedding extends Layer {
  weight: Parameter;
  constructor(readonly num_embeddings: number, readonly embedding_dim: number, opts: LayerOptions = {}) {
    super();
    checkInt(num_embeddings, 'num_embeddings', 'Embedding');
    checkInt(embedding_dim, 'embedding_dim', 'Embedding');
    const gen = opts.gen ?? T.defaultGenerator;
    this.weight = param([num_embeddings, embedding_dim], opts.dtype, (t) => init.normal_(t, 0, 1, gen));
  }
  forward(idx: T.Tensor): T.Tensor {
    return T.embedding(this.weight, idx);
  }
}

// ---- normalisation --------------------------------------------------------------------------------------

/** Normalise [N, C, ...] over groups of C/groups channels and all spatial positions. */
export class GroupNorm extends Layer {
  weight: Parameter | null;
  bias: Parameter | null;
  constructor(readonly num_groups: number, readonly num_channels: number, readonly eps = 1e-5, affine = true, opts: LayerOptions = {}) {
    super();
    checkInt(num_groups, 'num_groups', 'GroupNorm');
    if (num_channels % num_groups !== 0) throw new RangeError(`GroupNorm: ${num_channels} channels cannot be split into ${num_groups} groups`);
    this.weight = affine ? param([num_channels], opts.dtype, init.ones_) : null;
    this.bias = affine ? param([num_channels], opts.dtype, init.zeros_) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.num_channels) {
      throw new RangeError(`GroupNorm(${this.num_groups}, ${this.num_channels}): expected input [N, ${this.num_channels}, ...], got [${x.shape}]`);
    }
    return T.groupNorm(x, this.num_groups, this.weight, this.bias, this.eps);
  }
}

/** Normalise over the last dim (normalized_shape = [dim]). */
export class LayerNorm extends Layer {
  weight: Parameter | null;
  bias: Parameter | null;
  constructor(readonly dim: number, readonly eps = 1e-5, affine = true, opts: LayerOptions = {}) {
    super();
    checkInt(dim, 'dim', 'LayerNorm');
    this.weight = affine ? param([dim], opts.dtype, init.ones_) : null;
    this.bias = affine ? param([dim], opts.dtype, init.zeros_) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.shape[x.ndim - 1] !== this.dim) throw new RangeError(`LayerNorm(${this.dim}): last dim of input [${x.shape}] is not ${this.dim}`);
    return T.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export interface BatchNormOptions extends LayerOptions {
  affine?: boolean;
  /** false: no running statistics (batch statistics in eval mode too), like PyTorch. */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation over [N, C, H, W] per channel. In training mode it uses the batch statistics and
 * updates running_mean / running_var (unbiased variance) with `momentum`, or with a cumulative
 * average (1 / num_batches_tracked) when momentum is null; in eval mode it uses the running ones.
 */
export class BatchNorm2d extends Layer {
  weight: Parameter | null;
  bias: Parameter | null;
  running_mean: Buffer | null;
  running_var: Buffer | null;
  num_batches_tracked: Buffer | null;
  constructor(readonly num_features: number, readonly eps = 1e-5, readonly momentum: number | null = 0.1, opts: BatchNormOptions = {}) {
    super();
    checkInt(num_features, 'num_features', 'BatchNorm2d');
    const affine = opts.affine ?? true, track = opts.trackRunningStats ?? true;
    const dtype = opts.dtype ?? 'float32';
    this.weight = affine ? param([num_features], dtype, init.ones_) : null;
    this.bias = affine ? param([num_features], dtype, init.zeros_) : null;
    this.running_mean = track ? buffer(T.zeros([num_features], dtype)) : null;
    this.running_var = track ? buffer(T.ones([num_features], dtype)) : null;
    this.num_batches_tracked = track ? buffer(T.zeros([], 'int64')) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.num_features) {
      throw new RangeError(`BatchNorm2d(${this.num_features}): expected input [N, ${this.num_features}, H, W], got [${x.shape}]`);
    }
    const useBatch = this.training || !this.running_mean;
    let factor = this.momentum ?? 0;
    if (this.training && this.num_batches_tracked) {
      const n = this.num_batches_tracked.data as BigInt64Array;
      n[this.num_batches_tracked.offset] += 1n;
      if (this.momentum === null) factor = 1 / Number(n[this.num_batches_tracked.offset]);
    }
    return T.batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, useBatch, factor, this.eps);
  }
}

// ---- regularisation and activations -------------------------------------------------------------------

/** Zeroes elements with probability p in training mode and scales the rest by 1/(1 − p). */
export class Dropout extends Layer {
  constructor(readonly p = 0.5, readonly _gen?: T.Generator) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: T.Tensor): T.Tensor {
    if (!this.training || this.p === 0) return x;
    return T.dropout(x, this.p, true, this._gen);
  }
}

export class Identity extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return x;
  }
}

export class SiLU extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.silu(x);
  }
}

/** GELU with the exact erf (PyTorch's default approximate='none'). */
export class GELU extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.gelu(x);
  }
}

export class ReLU extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.relu(x);
  }
}

export class LeakyReLU extends Layer {
  constructor(readonly negative_slope = 0.01) {
    super();
  }
  forward(x: T.Tensor): T.Tensor {
    return T.leakyRelu(x, this.negative_slope);
  }
}

export class Tanh extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.tanh(x);
  }
}

export class Sigmoid extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.sigmoid(x);
  }
}
