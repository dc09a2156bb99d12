// Exponential moving average of a module's trainable parameters (LitEma, ldm/modules/ema.py).
//
//   buffers: decay (float32 scalar), num_updates (int32 scalar; 0, or −1 when the count is not used),
//            one shadow per trainable parameter, named with the dots removed (`diffusion_model.out.0.weight`
//            → `diffusion_modelout0weight`), initialised to a copy of the parameter
//   update:  if num_updates ≥ 0: num_updates += 1; d = min(decay, (1 + n) / (10 + n))   else d = decay
//            shadow ← shadow − (1 − d)·(shadow − param)          (all in float32, like the reference)
//   copyTo(model): trainable parameters ← shadows;  store(params) / restore(params): save and put back values.
// Checkpoints keep these buffers under `model_ema.decay`, `model_ema.num_updates`, `model_ema.<name>`.

import * as T from '../engine/index.js';
import type { Module, Parameter } from '../nn/index.js';

const f32 = Math.fround;

export interface LitEmaOptions {
  /** Upper bound of the decay (default 0.9999). */
  decay?: number;
  /** Warm the decay up with the update count (the reference's `use_num_upates`, default true). */
  useNumUpdates?: boolean;
}

type FloatArray = Float32Array | Float64Array;

function floatData(t: T.Tensor, what: string): FloatArray {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new TypeError(`LitEma: ${what} is ${t.dtype}, expected a float tensor`);
  return T.contiguousData(t) as FloatArray;
}

/** Write `src` into tensor `dst` (contiguous) in place. */
function writeInto(dst: T.Tensor, src: ArrayLike<number>, what: string): void {
  if (!dst.isContiguous()) throw new Error(`LitEma: ${what} is not contiguous`);
  if (src.length !== dst.size) throw new RangeError(`LitEma: ${what} has ${dst.size} values, source has ${src.length}`);
  (dst.data as FloatArray).set(src as FloatArray, dst.offset);
}

export class LitEma {
  /** float32 scalar. */
  readonly decay: T.Tensor;
  /** int32 scalar: the update count, or −1 without useNumUpdates. */
  readonly numUpdates: T.Tensor;
  /** Parameter name (with dots) → shadow name (without). */
  readonly names = new Map<string, string>();
  /** Shadow name → shadow tensor (same dtype and shape as the parameter). */
  readonly shadows = new Map<string, T.Tensor>();
  private collected: { data: FloatArray }[] = [];

  constructor(model: Module, opts: LitEmaOptions = {}) {
    const decay = opts.decay ?? 0.9999;
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`LitEma: decay must be between 0 and 1, got ${decay}`);
    this.decay = T.keep(T.tensor(new Float32Array([decay]), []));
    this.numUpdates = T.keep(T.tensor(new Int32Array([opts.useNumUpdates === false ? -1 : 0]), [], 'int32'));
    for (const [name, p] of model.namedParameters()) {
      if (!p.requiresGrad) continue;
      const s = name.replace(/\./g, '');
      if (this.shadows.has(s)) throw new Error(`LitEma: parameters ${[...this.names].find(([, v]) => v === s)![0]} and ${name} give the same shadow name ${s}`);
      const data = floatData(p, `parameter ${name}`);
      this.names.set(name, s);
      this.shadows.set(s, T.keep(T.Tensor.fromData(data.slice(), [...p.shape])));
    }
  }

  get numUpdatesValue(): number {
    return (this.numUpdates.data as Int32Array)[0];
  }

  /** The decay the next update will use (advances nothing). */
  private nextDecay(n: number): number {
    const d = (this.decay.data as Float32Array)[0];
    if (n < 0) return d;
    const q = f32((1 + n) / (10 + n)); // int32 / int32 → float32 in torch
    return q < d ? q : d; // Python's min(decay, q) keeps the first on ties
  }

  /** One EMA step towards the model's current trainable parameters (the reference's forward). */
  update(model: Module): void {
    const counts = this.numUpdates.data as Int32Array;
    if (counts[0] >= 0) counts[0] += 1;
    const oneMinus = f32(1 - this.nextDecay(counts[0]));
    for (const [name, p] of this.tracked(model, 'update')) {
      const sh = this.shadows.get(this.names.get(name)!)!;
      const s = sh.data as FloatArray, w = floatData(p, `parameter ${name}`);
      if (s instanceof Float32Array) {
        for (let i = 0; i < s.length; i++) s[i] = f32(s[i] - f32(oneMinus * f32(s[i] - w[i])));
      } else {
        for (let i = 0; i < s.length; i++) s[i] -= oneMinus * (s[i] - w[i]);
      }
    }
  }

  /** The model's trainable parameters, checked against the shadows (the reference asserts the same). */
  private *tracked(model: Module, who: string): Generator<[string, Parameter]> {
    for (const [name, p] of model.namedParameters()) {
      const has = this.names.has(name);
      if (p.requiresGrad && !has) throw new Error(`LitEma.${who}: trainable parameter ${name} has no shadow (the EMA was built over a different set of parameters)`);
      if (!p.requiresGrad && has) throw new Error(`LitEma.${who}: parameter ${name} has a shadow but no longer requires grad`);
      if (!has) continue;
      const sh = this.shadows.get(this.names.get(name)!)!;
      if (!T.sameShape(sh.shape, p.shape)) throw new RangeError(`LitEma.${who}: ${name} has shape [${p.shape}], its shadow [${sh.shape}]`);
      yield [name, p];
    }
  }

  /** Trainable parameters ← shadows. */
  copyTo(model: Module): void {
    for (const [name, p] of this.tracked(model, 'copyTo')) writeInto(p, floatData(this.shadows.get(this.names.get(name)!)!, name), `parameter ${name}`);
  }

  /** Save copies of `params` (before copyTo, to restore afterwards). */
  store(params: Iterable<T.Tensor>): void {
    this.collected = [...params].map((p, i) => ({ data: floatData(p, `stored parameter ${i}`).slice() }));
  }

  /** Put back the values saved by store, in the same order. */
  restore(params: Iterable<T.Tensor>): void {
    const list = [...params];
    if (list.length !== this.collected.length) throw new Error(`LitEma.restore: ${this.collected.length} parameter(s) stored, ${list.length} given`);
    list.forEach((p, i) => writeInto(p, this.collected[i].data, `restored parameter ${i}`));
  }

  /** The buffers under their checkpoint names (shared storage). */
  stateDict(prefix = 'model_ema.'): Map<string, T.Tensor> {
    const out = new Map<string, T.Tensor>([[`${prefix}decay`, this.decay], [`${prefix}num_updates`, this.numUpdates]]);
    for (const [s, t] of this.shadows) out.set(prefix + s, t);
    return out;
  }

  /** Copy a saved state in (every key must be there with the right shape; extra keys under `prefix` are errors). */
  loadStateDict(sd: Map<string, T.Tensor>, prefix = 'model_ema.', source = 'EMA state'): void {
    const own = this.stateDict(prefix);
    const missing = [...own.keys()].filter((k) => !sd.has(k));
    const unexpected = [...sd.keys()].filter((k) => k.startsWith(prefix) && !own.has(k));
    const misshaped = [...own].filter(([k, t]) => sd.has(k) && !T.sameShape(sd.get(k)!.shape, t.shape)).map(([k, t]) => `${k} [${sd.get(k)!.shape}] vs [${t.shape}]`);
    if (missing.length || unexpected.length || misshaped.length) {
      const part = (what: string, l: string[]) => (l.length ? ` ${l.length} ${what} (${l.slice(0, 5).join(', ')}${l.length > 5 ? ', …' : ''})` : '');
      throw new Error(`LitEma.loadStateDict(${source}):${part('missing', missing)}${part('unexpected', unexpected)}${part('mis-shaped', misshaped)}`);
    }
    for (const [k, t] of own) {
      const src = sd.get(k)!;
      const vals = T.contiguousData(src.dtype === t.dtype ? src : T.cast(src, t.dtype));
      (t.data as FloatArray).set(vals as FloatArray, t.offset);
    }
  }
}
