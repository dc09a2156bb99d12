// Reference normalisation kernels: group norm (optionally fused with SiLU) and layer norm.
// Statistics are two-pass (mean, then centred variance) in float64 accumulators; the variance is the
// biased one (PyTorch's), rstd = 1 / √(var + eps).
//
// Layouts (contiguous; Float32Array or Float64Array, one dtype per call — mean/rstd share x's dtype):
//   group norm: x, out, gy, gx [N, C, HW] (HW = product of the spatial dims, 1 if none); gamma, beta,
//               ggamma, gbeta [C]; mean, rstd [N·G], group g of sample n covers channels g·C/G … (g+1)·C/G − 1.
//   layer norm: x, out, gy, gx [rows, cols]; gamma, beta, ggamma, gbeta [cols]; mean, rstd [rows].
// Outputs (out, gx, ggamma, gbeta, mean, rstd) are overwritten.

import type { FloatArray } from '../dtype.js';

function siluGrad(a: number): number {
  const s = 1 / (1 + Math.exp(-a));
  return s * (1 + a * (1 - s));
}

export const tsNorm = {
  /**
   * y[n, c, i] = (x[n, c, i] − mean[n, g]) · rstd[n, g] · gamma[c] + beta[c]  (g = c / (C/G)),
   * then y ← y · sigmoid(y) when silu. gamma/beta null mean 1/0.
   */
  groupNormForward(
    x: FloatArray, N: number, C: number, HW: number, G: number, eps: number,
    gamma: FloatArray | null, beta: FloatArray | null, silu: boolean,
    out: FloatArray, mean: FloatArray, rstd: FloatArray,
  ): void {
    const Cg = C / G;
    const M = Cg * HW;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const base = (n * C + g * Cg) * HW;
        let s = 0;
        for (let i = 0; i < M; i++) s += x[base + i];
        const mu = s / M;
        let v = 0;
        for (let i = 0; i < M; i++) {
          const d = x[base + i] - mu;
          v += d * d;
        }
        const r = 1 / Math.sqrt(v / M + eps);
        mean[n * G + g] = mu;
        rstd[n * G + g] = r;
        for (let cc = 0; cc < Cg; cc++) {
          const c = g * Cg + cc;
          const scale = r * (gamma ? gamma[c] : 1);
          const shift = (beta ? beta[c] : 0) - mu * scale;
          const cb = base + cc * HW;
          if (silu) {
            for (let i = 0; i < HW; i++) {
              const a = x[cb + i] * scale + shift;
              out[cb + i] = a / (1 + Math.exp(-a));
            }
          } else {
            for (let i = 0; i < HW; i++) out[cb + i] = x[cb + i] * scale + shift;
          }
        }
      }
    }
  },

  /**
   * Gradients of groupNormForward given its saved mean/rstd: gx [N, C, HW]; ggamma/gbeta [C] (null: not
   * wanted). beta is needed only when silu (to recompute the pre-activation).
   */
  groupNormBackward(
    x: FloatArray, gy: FloatArray, N: number, C: number, HW: number, G: number,
    gamma: FloatArray | null, beta: FloatArray | null, silu: boolean,
    mean: FloatArray, rstd: FloatArray, gx: FloatArray, ggamma: FloatArray | null, gbeta: FloatArray | null,
  ): void {
    const Cg = C / G;
    const M = Cg * HW;
    const accG = new Float64Array(C), accB = new Float64Array(C);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const base = (n * C + g * Cg) * HW;
        const mu = mean[n * G + g], r = rstd[n * G + g];
        // Pass 1: Σ gxhat and Σ gxhat·xhat over the group, and the per-channel affine gradients.
        let s1 = 0, s2 = 0;
        for (let cc = 0; cc < Cg; cc++) {
          const c = g * Cg + cc;
          const gm = gamma ? gamma[c] : 1, bt = beta ? beta[c] : 0;
          const cb = base + cc * HW;
          let sg = 0, sb = 0;
          for (let i = 0; i < HW; i++) {
            const xh = (x[cb + i] - mu) * r;
            const ga = silu ? gy[cb + i] * siluGrad(xh * gm + bt) : gy[cb + i];
            sg += ga * xh;
            sb += ga;
          }
          accG[c] += sg;
          accB[c] += sb;
          s1 += sb * gm;
          s2 += sg * gm;
        }
        const m1 = s1 / M, m2 = s2 / M;
        // Pass 2: gx = rstd · (gxhat − mean(gxhat) − xhat · mean(gxhat · xhat)).
        for (let cc = 0; cc < Cg; cc++) {
          const c = g * Cg + cc;
          const gm = gamma ? gamma[c] : 1, bt = beta ? beta[c] : 0;
          const cb = base + cc * HW;
          for (let i = 0; i < HW; i++) {
            const xh = (x[cb + i] - mu) * r;
            const ga = silu ? gy[cb + i] * siluGrad(xh * gm + bt) : gy[cb + i];
            gx[cb + i] = r * (ga * gm - m1 - xh * m2);
          }
        }
      }
    }
    if (ggamma) for (let c = 0; c < C; c++) ggamma[c] = accG[c];
    if (gbeta) for (let c = 0; c < C; c++) gbeta[c] = accB[c];
  },

  /** y[r, j] = (x[r, j] − mean[r]) · rstd[r] · gamma[j] + beta[j] (gamma/beta null mean 1/0). */
  layerNormForward(
    x: FloatArray, rows: number, cols: number, eps: number,
    gamma: FloatArray | null, beta: FloatArray | null, out: FloatArray, mean: FloatArray, rstd: FloatArray,
  ): void {
    for (let rw = 0; rw < rows; rw++) {
      const base = rw * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += x[base + j];
      const mu = s / cols;
      let v = 0;
      for (let j = 0; j < cols; j++) {
        const d = x[base + j] - mu;
        v += d * d;
      }
      const r = 1 / Math.sqrt(v / cols + eps);
      mean[rw] = mu;
      rstd[rw] = r;
      for (let j = 0; j < cols; j++) {
        const xh = (x[base + j] - mu) * r;
        out[base + j] = (gamma ? xh * gamma[j] : xh) + (beta ? beta[j] : 0);
      }
    }
  },

  /** Gradients of layerNormForward: gx [rows, cols]; ggamma/gbeta [cols] (null: not wanted). */
  layerNormBackward(
    x: FloatArray, gy: FloatArray, rows: number, cols: number, gamma: FloatArray | null,
    mean: FloatArray, rstd: FloatArray, gx: FloatArray, ggamma: FloatArray | null, gbeta: FloatArray | null,
  ): void {
    const accG = new Float64Array(cols), accB = new Float64Array(cols);
    for (let rw = 0; rw < rows; rw++) {
      const base = rw * cols;
      const mu = mean[rw], r = rstd[rw];
      let s1 = 0, s2 = 0;
      for (let j = 0; j < cols; j++) {
        const xh = (x[base + j] - mu) * r;
        const g = gy[base + j];
        accG[j] += g * xh;
        accB[j] += g;
        const gxh = gamma ? g * gamma[j] : g;
        s1 += gxh;
        s2 += gxh * xh;
      }
      const m1 = s1 / cols, m2 = s2 / cols;
      for (let j = 0; j < cols; j++) {
        const xh = (x[base + j] - mu) * r;
        const gxh = gamma ? gy[base + j] * gamma[j] : gy[base + j];
        gx[base + j] = r * (gxh - m1 - xh * m2);
      }
    }
    if (ggamma) for (let j = 0; j < cols; j++) ggamma[j] = accG[j];
    if (gbeta) for (let j = 0; j < cols; j++) gbeta[j] = accB[j];
  },
};

export type NormKernels = typeof tsNorm;
