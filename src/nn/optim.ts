// Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW) and clip_grad_norm_.
//
// Parameters are updated in place through their storage with one fused loop per tensor; the state
// (momentum buffers, exp_avg, exp_avg_sq) is a plain typed array per parameter, of the parameter's
// element type (Float32Array for float32 weights). Gradients may be strided views (autograd hands
// leaves views of graph tensors); they are read through T.contiguousData.

import * as T from '../engine/index.js';

type FloatArray = Float32Array | Float64Array;
type Hyper = Record<string, number | boolean>;

export interface ParamGroup<O extends Hyper = Hyper> {
  params: T.Tensor[];
  options: O;
}

/** Per-parameter state: named typed arrays and the step count. */
export interface ParamState {
  step: number;
  buffers: Record<string, FloatArray>;
}

/** A serialisable optimizer state: tensors keyed `state.<index>.<name>` (index over all groups' params,
 *  in order, like PyTorch's state_dict) and the hyper-parameters of each group (JSON-safe). */
export interface OptimizerStateDict {
  tensors: Map<string, T.Tensor>;
  groups: Hyper[];
}

function paramData(p: T.Tensor, who: string, i: number): FloatArray {
  if (p.dtype !== 'float32' && p.dtype !== 'float64') throw new TypeError(`${who}: parameter ${i} is ${p.dtype}, expected float32/float64`);
  if (!p.isContiguous()) throw new Error(`${who}: parameter ${i} [${p.shape}] is not contiguous`);
  return p.data as FloatArray;
}

function gradData(p: T.Tensor, who: string, i: number): FloatArray {
  const g = p.grad!;
  if (!T.sameShape(g.shape, p.shape)) throw new RangeError(`${who}: gradient of parameter ${i} has shape [${g.shape}], parameter has [${p.shape}]`);
  if (g.dtype !== p.dtype) throw new TypeError(`${who}: gradient of parameter ${i} is ${g.dtype}, parameter is ${p.dtype}`);
  return T.contiguousData(g) as FloatArray;
}

export abstract class Optimizer<O extends Hyper> {
  readonly groups: ParamGroup<O>[];
  readonly state = new Map<T.Tensor, ParamState>();
  protected abstract readonly name: string;

  constructor(params: Iterable<T.Tensor> | { params: Iterable<T.Tensor>; options?: Partial<O> }[], defaults: O) {
    const list = [...params] as (T.Tensor | { params: Iterable<T.Tensor>; options?: Partial<O> })[];
    const raw = list.length > 0 && !(list[0] instanceof T.Tensor) ? (list as { params: Iterable<T.Tensor>; options?: Partial<O> }[]) : [{ params: list as T.Tensor[] }];
    this.groups = raw.map((g) => ({ params: [...g.params], options: { ...defaults, ...(g.options ?? {}) } as O }));
    const seen = new Set<T.Tensor>();
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!(p instanceof T.Tensor)) throw new TypeError('optimizer: params must be tensors (or groups of { params, options })');
        if (seen.has(p)) throw new Error(`optimizer: parameter ${p} appears more than once`);
        seen.add(p);
      }
    }
    if (seen.size === 0) throw new Error('optimizer: got an empty parameter list');
  }

  /** All parameters, in group order (the index used by stateDict). */
  params(): T.Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The learning rate of the first group; setting it sets every group's (for schedulers). */
  get lr(): number {
    return this.groups[0].options.lr as number;
  }
  set lr(v: number) {
    for (const g of this.groups) (g.options as Hyper).lr = v;
  }

  /** Drop gradients (PyTorch's zero_grad(set_to_none=True)); they are released, not zeroed. */
  zeroGrad(): void {
    for (const p of this.params()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    let i = 0;
    for (const g of this.groups) {
      for (const p of g.params) {
        if (p.grad) {
          let st = this.state.get(p);
          if (!st) {
            st = { step: 0, buffers: {} };
            this.state.set(p, st);
          }
          this.update(p, paramData(p, this.name, i), gradData(p, this.name, i), st, g.options);
        }
        i++;
      }
    }
  }

  protected abstract update(p: T.Tensor, w: FloatArray, grad: FloatArray, st: ParamState, o: O): void;

  protected buffer(p: T.Tensor, st: ParamState, name: string): FloatArray {
    let b = st.buffers[name];
    if (!b) {
      b = p.dtype === 'float64' ? new Float64Array(p.size) : new Float32Array(p.size);
      st.buffers[name] = b;
    }
    return b;
  }

  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, T.Tensor>();
    this.params().forEach((p, i) => {
      const st = this.state.get(p);
      if (!st) return;
      tensors.set(`state.${i}.step`, T.keep(T.tensor(new Float64Array([st.step]), [])));
      for (const [k, b] of Object.entries(st.buffers)) tensors.set(`state.${i}.${k}`, T.keep(T.tensor(b.slice(), [...p.shape])));
    });
    return { tensors, groups: this.groups.map((g) => ({ ...g.options })) };
  }

  /** Restore a state saved by stateDict from an optimizer over parameters of the same shapes. */
  loadStateDict(sd: OptimizerStateDict, source = 'optimizer state'): void {
    if (sd.groups.length !== this.groups.length) {
      throw new Error(`${this.name}.loadStateDict(${source}): ${sd.groups.length} parameter group(s) saved, optimizer has ${this.groups.length}`);
    }
    const params = this.params();
    const fresh = new Map<T.Tensor, ParamState>();
    for (const [key, t] of sd.tensors) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(key);
      if (!m) throw new Error(`${this.name}.loadStateDict(${source}): unexpected key ${key}`);
      const i = Number(m[1]);
      const p = params[i];
      if (!p) throw new Error(`${this.name}.loadStateDict(${source}): ${key} refers to parameter ${i}, optimizer has ${params.length}`);
      let st = fresh.get(p);
      if (!st) fresh.set(p, (st = { step: 0, buffers: {} }));
      if (m[2] === 'step') {
        st.step = t.item();
        continue;
      }
      if (!T.sameShape(t.shape, p.shape)) {
        throw new Error(`${this.name}.loadStateDict(${source}): ${key} has shape [${t.shape}], parameter ${i} has [${p.shape}]`);
      }
      const vals = T.contiguousData(t.dtype === p.dtype ? t : T.cast(t, p.dtype)) as FloatArray;
      st.buffers[m[2]] = p.dtype === 'float64' ? Float64Array.from(vals) : Float32Array.from(vals);
    }
    this.state.clear();
    for (const [p, st] of fresh) this.state.set(p, st);
    sd.groups.forEach((h, gi) => Object.assign(this.groups[gi].options, h));
  }
}

// ---- SGD ------------------------------------------------------------------------------------------------

export interface SGDOptions extends Hyper {
  lr: number;
  momentum: number;
  dampening: number;
  weight_decay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * torch.optim.SGD: d = g (+ wd·p); with momentum, buf = d on the first step, else
 * buf = momentum·buf + (1 − dampening)·d; d = nesterov ? d + momentum·buf : buf; p −= lr·d.
 */
export class SGD extends Optimizer<SGDOptions> {
  protected readonly name = 'SGD';
  constructor(params: Iterable<T.Tensor> | { params: Iterable<T.Tensor>; options?: Partial<SGDOptions> }[], opts: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weight_decay: 0, nesterov: false, maximize: false, ...opts });
    for (const g of this.groups) {
      const o = g.options;
      if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new Error('SGD: nesterov momentum requires momentum > 0 and dampening = 0');
    }
  }

  protected update(p: T.Tensor, w: FloatArray, grad: FloatArray, st: ParamState, o: SGDOptions): void {
    const { lr, momentum, dampening, weight_decay: wd, nesterov } = o;
    const sign = o.maximize ? -1 : 1;
    const off = p.offset, n = p.size;
    const first = st.step === 0;
    st.step++;
    if (momentum === 0) {
      for (let i = 0; i < n; i++) {
        const d = sign * grad[i] + wd * w[off + i];
        w[off + i] -= lr * d;
      }
      return;
    }
    const buf = this.buffer(p, st, 'momentum_buffer');
    for (let i = 0; i < n; i++) {
      const d = sign * grad[i] + wd * w[off + i];
      const b = first ? d : momentum * buf[i] + (1 - dampening) * d;
      buf[i] = b;
      w[off + i] -= lr * (nesterov ? d + momentum * b : b);
    }
  }
}

// ---- Adam / AdamW ------------------------------------------------------------------------------------

export interface AdamOptions extends Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export interface AdamArgs {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weight_decay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

function adamDefaults(opts: AdamArgs, wd: number): AdamOptions {
  const { betas, ...rest } = opts;
  const o: AdamOptions = { lr: 1e-3, beta1: betas?.[0] ?? 0.9, beta2: betas?.[1] ?? 0.999, eps: 1e-8, weight_decay: wd, amsgrad: false, maximize: false };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (o as Hyper)[k] = v;
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1)) throw new RangeError(`Adam: betas must be in [0, 1), got [${o.beta1}, ${o.beta2}]`);
  return o;
}

/**
 * The shared Adam step (PyTorch's single-tensor path):
 *   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²  (v̂ = max(v̂, v) with amsgrad)
 *   p −= lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
 * with `l2` added to the gradient as l2·p first (Adam's weight decay) and p scaled by `decay`
 * before the update (AdamW's decoupled decay, 1 − lr·wd).
 */
function adamUpdate(p: T.Tensor, w: FloatArray, grad: FloatArray, st: ParamState, o: AdamOptions, l2: number, decay: number, buffer: (name: string) => FloatArray): void {
  const { lr, beta1, beta2, eps } = o;
  const m = buffer('exp_avg'), v = buffer('exp_avg_sq');
  const vmax = o.amsgrad ? buffer('max_exp_avg_sq') : null;
  const t = ++st.step;
  const bc1 = 1 - Math.pow(beta1, t);
  const bc2sqrt = Math.sqrt(1 - Math.pow(beta2, t));
  const stepSize = lr / bc1;
  const sign = o.maximize ? -1 : 1;
  // The kernel table's fused update (native for float32 parameters and state, bit-identical to the reference loop).
  T.K.adamUpdate(w, p.offset, grad, m, v, vmax, p.size, { beta1, beta2, eps, stepSize, bc2sqrt, l2, decay, sign });
}

/** torch.optim.Adam (weight_decay is L2: added to the gradient). Options: lr, betas, eps, weight_decay, amsgrad. */
export class Adam extends Optimizer<AdamOptions> {
  protected readonly name: string = 'Adam';
  constructor(params: Iterable<T.Tensor> | { params: Iterable<T.Tensor>; options?: Partial<AdamOptions> }[], opts: AdamArgs = {}) {
    super(params, adamDefaults(opts, 0));
  }
  protected update(p: T.Tensor, w: FloatArray, grad: FloatArray, st: ParamState, o: AdamOptions): void {
    adamUpdate(p, w, grad, st, o, o.weight_decay, 1, (k) => this.buffer(p, st, k));
  }
}

/** torch.optim.AdamW (decoupled decay p ← p·(1 − lr·wd) before the Adam update; default wd 0.01). */
export class AdamW extends Optimizer<AdamOptions> {
  protected readonly name: string = 'AdamW';
  constructor(params: Iterable<T.Tensor> | { params: Iterable<T.Tensor>; options?: Partial<AdamOptions> }[], opts: AdamArgs = {}) {
    super(params, adamDefaults(opts, 1e-2));
  }
  protected update(p: T.Tensor, w: FloatArray, grad: FloatArray, st: ParamState, o: AdamOptions): void {
    adamUpdate(p, w, grad, st, o, 0, 1 - o.lr * o.weight_decay, (k) => this.buffer(p, st, k));
  }
}

// ---- gradient clipping --------------------------------------------------------------------------------

/**
 * torch.nn.utils.clip_grad_norm_: the total norm is the norm of all gradients together
 * (‖(‖g₁‖, ‖g₂‖, ...)‖, or the max |g| for normType Infinity); every gradient is scaled by
 * min(1, maxNorm / (total + 1e-6)). Returns the total norm (before clipping).
 * Gradients are replaced by new tensors rather than scaled in place, since autograd may hand
 * several leaves views of one storage.
 */
export function clipGradNorm(params: Iterable<T.Tensor>, maxNorm: number, normType = 2): number {
  const withGrad = [...params].filter((p) => p.grad);
  if (withGrad.length === 0) return 0;
  const datas = withGrad.map((p) => T.contiguousData(p.grad!) as FloatArray);
  let total = 0;
  if (normType === Infinity) {
    for (const d of datas) for (let i = 0; i < d.length; i++) total = Math.max(total, Math.abs(d[i]));
  } else {
    for (const d of datas) {
      let s = 0;
      for (let i = 0; i < d.length; i++) s += Math.pow(Math.abs(d[i]), normType);
      total += s;
    }
    total = Math.pow(total, 1 / normType);
  }
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1) {
    withGrad.forEach((p, k) => {
      const src = datas[k];
      const out = p.dtype === 'float64' ? new Float64Array(src.length) : new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] * coef;
      const g = T.keep(T.Tensor.fromData(out, p.shape));
      p.grad!.dispose();
      p.grad = g;
    });
  }
  return total;
}
