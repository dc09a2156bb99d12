// Reference optimizer kernels: the fused Adam / AdamW parameter update (src/nn/optim.ts calls it through
// the kernel table; the native addon's version computes the same in double, bit for bit).

import type { FloatArray } from '../dtype.js';

/**
 * One step's constants: stepSize = lr / (1 − β1ᵗ), bc2sqrt = √(1 − β2ᵗ), l2 = Adam's L2 weight decay
 * (added to the gradient), decay = AdamW's decoupled 1 − lr·wd (1 for Adam), sign = −1 to maximise.
 * native/common.h's AdamHyper has the same fields.
 */
export interface AdamHyper {
  beta1: number; beta2: number; eps: number; stepSize: number; bc2sqrt: number; l2: number; decay: number; sign: number;
}

export const tsOptim = {
  /**
   * PyTorch's single-tensor Adam step over n elements, in place: w[wOff + i], m = exp_avg, v = exp_avg_sq,
   * vmax = max_exp_avg_sq (amsgrad) or null; grad, m, v, vmax start at index 0.
   *   g = sign·grad + l2·w;  w *= decay;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²  (v̂ = max(v̂, v))
   *   w −= stepSize · m / (√v̂ / bc2sqrt + eps)
   */
  adamUpdate(w: FloatArray, wOff: number, grad: FloatArray, m: FloatArray, v: FloatArray, vmax: FloatArray | null, n: number, h: AdamHyper): void {
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

export type OptimKernels = typeof tsOptim;
