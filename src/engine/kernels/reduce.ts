// Reference reductions over the middle axis of a contiguous [outer, n, inner] buffer.
// Every reduction over arbitrary axes is brought to this form by the ops layer.

import type { FloatArray } from '../dtype.js';

export const tsReduce = {
  /** out[o, i] = Σ_j x[o, j, i] (accumulated in float64). */
  sum(x: FloatArray, outer: number, n: number, inner: number, out: FloatArray): void {
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        let s = 0;
        const base = o * n;
        for (let j = 0; j < n; j++) s += x[base + j];
        out[o] = s;
      }
      return;
    }
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      for (let j = 0; j < n; j++) {
        const base = (o * n + j) * inner;
        for (let i = 0; i < inner; i++) acc[i] += x[base + i];
      }
      for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
    }
  },

  /** Max (or min) and its first index along the middle axis. NaN propagates like PyTorch. */
  extreme(x: FloatArray, outer: number, n: number, inner: number, out: FloatArray, idx: Int32Array, isMax: boolean): void {
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = x[o * n * inner + i];
        let bi = 0;
        for (let j = 1; j < n && !Number.isNaN(best); j++) {
          const v = x[(o * n + j) * inner + i];
          if (Number.isNaN(v) || (isMax ? v > best : v < best)) {
            best = v;
            bi = j;
          }
        }
        out[o * inner + i] = best;
        idx[o * inner + i] = bi;
      }
    }
  },
};

export type ReduceKernels = typeof tsReduce;
