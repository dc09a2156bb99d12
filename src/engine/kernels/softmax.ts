// Reference softmax kernels over the last axis of a contiguous [rows, cols] buffer (the ops layer moves
// any other axis last). Float32Array or Float64Array, one dtype per call; outputs are overwritten.
// Max-subtracted exponentials with float64 sums.

import type { FloatArray } from '../dtype.js';

export const tsSoftmax = {
  /** out[r, j] = exp(x[r, j] − max_j x[r]) / Σ_j exp(x[r, j] − max_j x[r]); x, out [rows, cols]. */
  softmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let mx = -Infinity;
      for (let j = 0; j < cols; j++) if (x[base + j] > mx) mx = x[base + j];
      if (mx === -Infinity) mx = 0;
      let s = 0;
      for (let j = 0; j < cols; j++) {
        const e = Math.exp(x[base + j] - mx);
        out[base + j] = e;
        s += e;
      }
      const inv = 1 / s;
      for (let j = 0; j < cols; j++) out[base + j] *= inv;
    }
  },

  /** gx[r, j] = y[r, j] · (gy[r, j] − Σ_k gy[r, k] · y[r, k]), y the softmax output; all [rows, cols]. */
  softmaxBackward(y: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray): void {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += gy[base + j] * y[base + j];
      for (let j = 0; j < cols; j++) gx[base + j] = y[base + j] * (gy[base + j] - dot);
    }
  },

  /** out[r, j] = x[r, j] − max − log Σ_j exp(x[r, j] − max); x, out [rows, cols]. */
  logSoftmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let mx = -Infinity;
      for (let j = 0; j < cols; j++) if (x[base + j] > mx) mx = x[base + j];
      if (mx === -Infinity) mx = 0;
      let s = 0;
      for (let j = 0; j < cols; j++) s += Math.exp(x[base + j] - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < cols; j++) out[base + j] = x[base + j] - lse;
    }
  },

  /** gx[r, j] = gy[r, j] − exp(y[r, j]) · Σ_k gy[r, k], y the log-softmax output; all [rows, cols]. */
  logSoftmaxBackward(y: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray): void {
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let s = 0;
      for (let j = 0; j < cols; j++) s += gy[base + j];
      for (let j = 0; j < cols; j++) gx[base + j] = gy[base + j] - Math.exp(y[base + j]) * s;
    }
  },
};

export type SoftmaxKernels = typeof tsSoftmax;
