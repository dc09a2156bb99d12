// How models create their leaf layers, and the shape-only ("meta") build.
//
// Normal build: leaf layers are the nn layers (layers.ts), initialised like PyTorch's defaults; the
// reference's zero_module() outputs are then zeroed with zeroModule().
//
// Meta build ({ meta: true }): every parameter is a tensor with its full shape but no storage (an empty
// buffer), so a model's key list, shapes and parameter count can be inspected at no cost — the
// 872 M-parameter txt2img UNet builds in milliseconds without allocating its 3.5 GB. A meta model
// cannot run (forward throws) and cannot load weights; it exists for structure checks and planning.

import * as T from '../engine/index.js';
import { Conv2d, Embedding, GroupNorm, LayerNorm, Linear } from './layers.js';
import { Layer, Module, Parameter } from './module.js';
import * as init from './init.js';

export interface BuildOptions {
  /** Shape-only build: parameters carry shapes but no values. */
  meta?: boolean;
  /** Random stream for the initial weights (default: the engine's process-wide generator). */
  gen?: T.Generator;
}

/** A parameter of the given shape without storage (meta build). */
export function metaParameter(shape: readonly number[]): Parameter {
  return new Parameter(new T.Tensor(new T.Storage(new Float32Array(0)), shape));
}

/** Whether a parameter belongs to a meta (shape-only) build. */
export function isMeta(p: T.Tensor): boolean {
  return p.size > 0 && p.data.length === 0;
}

/** Stand-in for a leaf layer in a meta build: the same parameter names and shapes, no values. */
export class MetaLayer extends Layer {
  constructor(readonly _kind: string, params: Record<string, readonly number[] | null>) {
    super();
    for (const [k, s] of Object.entries(params)) if (s) (this as unknown as Record<string, unknown>)[k] = metaParameter(s);
  }
  forward(): T.Tensor {
    throw new Error(`${this._kind}: this layer comes from a meta (shape-only) build and has no values; build without { meta: true } to run it`);
  }
}

function newParameter(shape: number[], fill: (t: T.Tensor) => void): Parameter {
  const t = T.empty(shape);
  fill(t);
  const p = new Parameter(t);
  t.dispose();
  return p;
}

/** 1×1 Conv1d (weight [out, in, 1]) acting on [B, C, T]; the reference's conv_nd(1, ..., 1). */
export class Conv1x1 extends Layer {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly _in: number, readonly _out: number, bias = true, gen: T.Generator = T.defaultGenerator) {
    super();
    this.weight = newParameter([_out, _in, 1], (t) => init.kaimingUniform_(t, { a: Math.sqrt(5), gen }));
    const bound = 1 / Math.sqrt(_in);
    this.bias = bias ? newParameter([_out], (t) => init.uniform_(t, -bound, bound, gen)) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.ndim !== 3 || x.shape[1] !== this._in) {
      throw new RangeError(`Conv1x1: expected [B, ${this._in}, T], got [${x.shape}]`);
    }
    const w = T.reshape(this.weight, [this._out, this._in]);
    const y = T.matmul(w, x); // [B, out, T]
    return this.bias ? T.add(y, T.reshape(this.bias, [this._out, 1])) : y;
  }
}

/** Leaf-layer factory honouring the build mode. */
export class Builder {
  readonly meta: boolean;
  readonly gen: T.Generator;
  constructor(opts: BuildOptions = {}) {
    this.meta = opts.meta ?? false;
    this.gen = opts.gen ?? T.defaultGenerator;
  }
  linear(inF: number, outF: number, bias = true): Layer {
    return this.meta ? new MetaLayer('Linear', { weight: [outF, inF], bias: bias ? [outF] : null }) : new Linear(inF, outF, bias, { gen: this.gen });
  }
  conv2d(inC: number, outC: number, k: number, opts: { stride?: number; padding?: number; bias?: boolean } = {}): Layer {
    const bias = opts.bias ?? true;
    if (this.meta) return new MetaLayer('Conv2d', { weight: [outC, inC, k, k], bias: bias ? [outC] : null });
    return new Conv2d(inC, outC, k, { stride: opts.stride ?? 1, padding: opts.padding ?? 0, bias, gen: this.gen });
  }
  conv1x1(inC: number, outC: number): Layer {
    return this.meta ? new MetaLayer('Conv1d', { weight: [outC, inC, 1], bias: [outC] }) : new Conv1x1(inC, outC, true, this.gen);
  }
  groupNorm(groups: number, channels: number, eps: number): Layer {
    if (channels % groups !== 0) throw new RangeError(`GroupNorm: ${channels} channels are not divisible into ${groups} groups`);
    return this.meta ? new MetaLayer('GroupNorm', { weight: [channels], bias: [channels] }) : new GroupNorm(groups, channels, eps);
  }
  layerNorm(dim: number, eps = 1e-5): Layer {
    return this.meta ? new MetaLayer('LayerNorm', { weight: [dim], bias: [dim] }) : new LayerNorm(dim, eps);
  }
  embedding(n: number, dim: number): Layer {
    return this.meta ? new MetaLayer('Embedding', { weight: [n, dim] }) : new Embedding(n, dim, { gen: this.gen });
  }
}

/** The reference's zero_module(): zero every parameter of m (no-op in a meta build). */
export function zeroModule<M extends Module>(m: M): M {
  for (const [, p] of m.namedParameters()) if (!isMeta(p)) init.zeros_(p);
  return m;
}

/** Normal-initialise a layer's weight (x_transformer's embeddings use N(0, 0.02²)). */
export function normalInit<M extends Module>(m: M, std: number, gen: T.Generator = T.defaultGenerator): M {
  const w = param(m, 'weight');
  if (!isMeta(w)) init.normal_(w, 0, std, gen);
  return m;
}

/** A named parameter field of a leaf layer (weight, bias), or null when the layer has none. */
export function param(m: Module, name: 'weight'): Parameter;
export function param(m: Module, name: string): Parameter | null;
export function param(m: Module, name: string): Parameter | null {
  const v = (m as unknown as Record<string, unknown>)[name];
  if (v === undefined || v === null) {
    if (name === 'weight') throw new Error(`${m.constructor.name} has no weight parameter`);
    return null;
  }
  if (!(v instanceof Parameter)) throw new Error(`${m.constructor.name}.${name} is not a Parameter`);
  return v;
}

/** GroupNorm (reading the layer's affine parameters) with the SiLU that always follows it, fused. */
export function groupNormSilu(norm: Module, x: T.Tensor, groups: number, eps: number): T.Tensor {
  return T.groupNorm(x, groups, param(norm, 'weight'), param(norm, 'bias'), eps, true);
}
