// Reference optimizer kernels: the fused Adam / AdamW parameter update (src/nn/optim.ts calls it through
// the kernel table; the native addon's version computes the same, bit for bit).

import type { FloatArray } from '../dtype.js';

/**
 * One step's constants: stepSize = lr / (1 − β1ᵗ), bc2sqrt = √(1 − β2ᵗ), l2 = Adam's L2 weight decay
 * (added to the gradient), decay = AdamW's decoupled 1 − lr·wd (1 for Adam), sign = −1 to maximise.
 * native/common.h's AdamHyper has the same fields.
 */
export interface AdamHyper {
  beta1: number; beta2: number; eps: number; stepSize: number; bc2sqrt: number; l2: number; decay: number; sign: number;
}

const f = Math.fround;

export const tsOptim = {
  /**
   * PyTorch's single-tensor Adam step over n elements, in place: w[wOff + i], m = exp_avg, v = exp_avg_sq,
   * vmax = max_exp_avg_sq (amsgrad) or null; grad, m, v, vmax start at index 0.
   *   g = sign·grad + l2·w;  w *= decay;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²  (v̂ = max(v̂, v))
   *   w −= stepSize · m / (√v̂ / bc2sqrt + eps)
   * Float32 parameters are stepped in float32 arithmetic, one rounding per tensor operation of torch/optim/adam.py
   * and adamw.py (mul_, add_ with alpha, addcmul_, sqrt, div, add_, addcdiv_ with value; the constants rounded to
   * float32), with the fused multiply-adds of ATen's vectorised CPU kernels (add with alpha, addcmul): the
   * results are PyTorch's on the CPU, bit for bit. Float64 parameters are stepped in double.
   */
  adamUpdate(w: FloatArray, wOff: number, grad: FloatArray, m: FloatArray, v: FloatArray, vmax: FloatArray | null, n: number, h: AdamHyper): void {
    if (w instanceof Float32Array) return adamFloat32(w, wOff, grad, m, v, vmax, n, h);
    const { beta1, beta2, eps, stepSize, bc2sqrt, l2, decay, sign } = h;
    for (let i = 0; i < n; i++) {
      let wi = w[wOff + i];
      const g = sign * grad[i] + l2 * wi;
      wi *= decay;
      const mi = beta1 * m[i] + (1 - beta1) * g;
      const vi = beta2 * v[i] + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      let vd = v[i]; // as stored (rounded to the state's type), like PyTorch
      if (vmax) {
        if (vmax[i] < vd) vmax[i] = vd;
        vd = vmax[i];
      }
      const denom = Math.sqrt(vd) / bc2sqrt + eps;
      w[wOff + i] = wi - stepSize * (m[i] / denom);
    }
  },
};

const bits = new Float32Array(1), bitsI = new Int32Array(bits.buffer);

/** The float32 next to r (r itself a float32) in direction dir (±1). */
function nextFloat32(r: number, dir: number): number {
  if (r === 0) return dir * 2 ** -149;
  bits[0] = r;
  bitsI[0] += (r > 0) === (dir > 0) ? 1 : -1;
  return bits[0];
}

/**
 * fmaf: a·b + c for float32 a, b, c, rounded once to float32. a·b is exact in double; the double sum s can be
 * off only where it lands exactly halfway between two float32s, and there the sign of its error (TwoSum) decides.
 */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b, s = p + c, r = f(s);
  if (r === s || !Number.isFinite(s)) return r;
  const bv = s - p, e = (p - (s - bv)) + (c - bv);
  if (e === 0) return r;
  const other = nextFloat32(r, s > r ? 1 : -1);
  if (s - r !== other - s) return r;
  return (e > 0) === (other > r) ? other : r;
}

/**
 * The float32 step (native/optim.inc computes the same, bit for bit). Every operation of a float32 pair done in
 * double and rounded once is the correctly rounded float32 operation, so Math.fround after each one is exact.
 */
function adamFloat32(w: Float32Array, wOff: number, grad: FloatArray, m: FloatArray, v: FloatArray, vmax: FloatArray | null, n: number, h: AdamHyper): void {
  const b1 = f(h.beta1), omb1 = f(1 - h.beta1), b2 = f(h.beta2), omb2 = f(1 - h.beta2), eps = f(h.eps);
  const bc = f(h.bc2sqrt), negStep = f(-h.stepSize), l2 = f(h.l2), decay = f(h.decay), neg = h.sign < 0;
  for (let i = 0; i < n; i++) {
    let wi = w[wOff + i];
    let g = neg ? -grad[i] : grad[i];
    if (h.l2 !== 0) g = fmaf(wi, l2, g);                 // grad.add(param, alpha=weight_decay)
    if (h.decay !== 1) wi = f(wi * decay);               // param.mul_(1 − lr·weight_decay)
    const mi = fmaf(g, omb1, f(m[i] * b1));              // exp_avg.mul_(β1).add_(grad, alpha=1 − β1)
    const vi = fmaf(f(omb2 * g), g, f(v[i] * b2));       // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2)
    m[i] = mi;
    v[i] = vi;
    let vd = vi;
    if (vmax) {
      if (vmax[i] < vd) vmax[i] = vd;
      vd = vmax[i];
    }
    const denom = f(f(f(Math.sqrt(vd)) / bc) + eps);    // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    w[wOff + i] = f(wi + f(f(negStep * mi) / denom));  // param.addcdiv_(exp_avg, denom, value=−step_size)
  }
}

export type OptimKernels = typeof tsOptim;
