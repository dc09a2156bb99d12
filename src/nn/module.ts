// Module: a tree of named parameters, buffers and sub-modules whose dotted names are PyTorch
// state_dict keys. Field names mirror the checkpoint (`this.in_layers = new Sequential(...)` gives
// `in_layers.0.weight`), so loading a checkpoint is a walk over names.
//
// Discovery is by own enumerable fields, in declaration order: a Parameter or Buffer field is a
// tensor entry, a Module field is a child, and `null`/`undefined` fields are skipped (e.g. an absent
// bias). Fields whose names start with `_` are private and never part of the state dict.

import * as T from '../engine/index.js';

export class Parameter extends T.Tensor {
  constructor(t: T.Tensor) {
    super(t.storage, t.shape, t.strides, t.offset);
    T.keep(this);
    this.requiresGrad = true;
  }
}

/** A non-trainable tensor that is part of the state dict (running statistics, schedules). */
export class Buffer extends T.Tensor {
  /** persistent=false buffers are used but not saved, like PyTorch's register_buffer(persistent=False). */
  constructor(t: T.Tensor, readonly persistent = true) {
    super(t.storage, t.shape, t.strides, t.offset);
    T.keep(this);
  }
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; got: number[] }[];
}

export class Module {
  training = true;

  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith('_')) continue;
      if (v instanceof Module) yield [k, v];
    }
  }

  *namedParameters(prefix = ''): Generator<[string, Parameter]> {
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith('_')) continue;
      if (v instanceof Parameter) yield [prefix + k, v];
      else if (v instanceof Module) yield* v.namedParameters(`${prefix}${k}.`);
    }
  }

  *namedBuffers(prefix = '', persistentOnly = false): Generator<[string, Buffer]> {
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith('_')) continue;
      if (v instanceof Buffer && (!persistentOnly || v.persistent)) yield [prefix + k, v];
      else if (v instanceof Module) yield* v.namedBuffers(`${prefix}${k}.`, persistentOnly);
    }
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ''), this];
    for (const [k, v] of this.namedChildren()) yield* v.namedModules(`${prefix}${k}.`);
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  numParameters(): number {
    let n = 0;
    for (const [, p] of this.namedParameters()) n += p.size;
    return n;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Parameters and persistent buffers under their state-dict keys (shared storage, not copies). */
  stateDict(): Map<string, T.Tensor> {
    const out = new Map<string, T.Tensor>();
    for (const [k, p] of this.namedParameters()) out.set(k, p);
    for (const [k, b] of this.namedBuffers('', true)) out.set(k, b);
    return out;
  }

  /**
   * Copy values from `sd` into this module's tensors. Returns the report of missing, unexpected and
   * wrongly-shaped keys; with strict (default) any of them throws an error listing them all.
   */
  loadStateDict(sd: Map<string, T.Tensor> | Record<string, T.Tensor>, opts: { strict?: boolean; source?: string } = {}): LoadReport {
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    for (const [k, t] of own) {
      const src = entries.get(k);
      if (!src) {
        report.missing.push(k);
        continue;
      }
      if (!T.sameShape(src.shape, t.shape)) {
        report.mismatched.push({ key: k, expected: [...t.shape], got: [...src.shape] });
        continue;
      }
    }
    for (const k of entries.keys()) if (!own.has(k)) report.unexpected.push(k);
    const bad = report.missing.length + report.unexpected.length + report.mismatched.length;
    if (bad > 0 && opts.strict !== false) throw new Error(formatLoadReport(report, opts.source));
    for (const [k, t] of own) {
      const src = entries.get(k);
      if (src && T.sameShape(src.shape, t.shape)) assignValues(t, src, k);
    }
    return report;
  }
}

function assignValues(dst: T.Tensor, src: T.Tensor, key: string): void {
  if (!dst.isContiguous()) throw new Error(`loadStateDict: ${key} is not contiguous`);
  const vals = src.dtype === dst.dtype ? T.contiguousData(src) : T.contiguousData(T.cast(src, dst.dtype));
  (dst.data as Float32Array).set(vals as Float32Array, dst.offset);
}

export function formatLoadReport(r: LoadReport, source = 'state dict'): string {
  const lines = [`cannot load ${source}:`];
  const list = (what: string, keys: string[]) => {
    if (keys.length === 0) return;
    lines.push(`  ${keys.length} ${what} key(s): ${keys.slice(0, 12).join(', ')}${keys.length > 12 ? `, … (${keys.length - 12} more)` : ''}`);
  };
  list('missing', r.missing);
  list('unexpected', r.unexpected);
  for (const m of r.mismatched.slice(0, 12)) lines.push(`  shape mismatch at ${m.key}: model has [${m.expected}], file has [${m.got}]`);
  if (r.mismatched.length > 12) lines.push(`  … ${r.mismatched.length - 12} more shape mismatches`);
  return lines.join('\n');
}

/** Children indexed 0..n-1 (PyTorch's ModuleList keys: `blocks.0.…`). */
export class ModuleList<M extends Module = Module> extends Module {
  [index: number]: M;
  length = 0;
  constructor(mods: M[] = []) {
    super();
    for (const m of mods) this.push(m);
  }
  push(m: M): this {
    this[this.length++] = m;
    return this;
  }
  at(i: number): M {
    return this[i < 0 ? this.length + i : i];
  }
  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.length; i++) yield this[i];
  }
  override *namedChildren(): Generator<[string, Module]> {
    for (let i = 0; i < this.length; i++) yield [String(i), this[i]];
  }
}

/** A module that maps one tensor to one tensor. */
export abstract class Layer extends Module {
  abstract forward(x: T.Tensor): T.Tensor;
}

/** Layers applied in order (PyTorch's nn.Sequential; keys `0.weight`, `2.bias`, ...). Identity-like
 *  entries without parameters (activations) still take an index so later keys stay aligned. */
export class Sequential extends ModuleList<Layer> {
  forward(x: T.Tensor): T.Tensor {
    for (const m of this) x = m.forward(x);
    return x;
  }
}
