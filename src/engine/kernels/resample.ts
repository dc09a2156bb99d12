// Reference resampling kernels: nearest upsampling by an integer factor, average pooling (no padding), 2×2 max
// pooling and
// bilinear interpolation (align_corners = false, PyTorch's source-index formula).
//
// Layouts: every image tensor is viewed as contiguous planes [NC, H, W] (NC = batch × channels), the
// output as [NC, OH, OW]. Float32Array or Float64Array, one dtype per call. Outputs are overwritten.

import type { FloatArray } from '../dtype.js';

/** Source index and weights along one axis: out[d] = w0[d]·in[i0[d]] + w1[d]·in[i1[d]]. */
interface Taps {
  i0: Int32Array;
  i1: Int32Array;
  w0: Float64Array;
  w1: Float64Array;
}

/**
 * PyTorch's align_corners=false mapping: src = scale·(dst + 0.5) − 0.5, clamped at 0; i0 = ⌊src⌋,
 * i1 = min(i0 + 1, size − 1), λ = src − i0. `scale` is input/output size (or 1/scale_factor).
 */
function bilinearTaps(size: number, outSize: number, scale: number): Taps {
  const t: Taps = { i0: new Int32Array(outSize), i1: new Int32Array(outSize), w0: new Float64Array(outSize), w1: new Float64Array(outSize) };
  for (let d = 0; d < outSize; d++) {
    let src = scale * (d + 0.5) - 0.5;
    if (src < 0) src = 0;
    let i0 = Math.floor(src);
    if (i0 > size - 1) i0 = size - 1;
    const l1 = Math.min(src - i0, 1);
    t.i0[d] = i0;
    t.i1[d] = i0 < size - 1 ? i0 + 1 : i0;
    t.w1[d] = l1;
    t.w0[d] = 1 - l1;
  }
  return t;
}

export const tsResample = {
  /** out[p, h, w] = x[p, ⌊h / s⌋, ⌊w / s⌋]; x [NC, H, W], out [NC, H·s, W·s]. */
  upsampleNearestForward(x: FloatArray, NC: number, H: number, W: number, s: number, out: FloatArray): void {
    const OW = W * s;
    let o = 0;
    for (let p = 0; p < NC; p++) {
      for (let h = 0; h < H; h++) {
        const row = (p * H + h) * W;
        const start = o;
        for (let w = 0; w < W; w++) {
          const v = x[row + w];
          for (let k = 0; k < s; k++) out[o++] = v;
        }
        for (let k = 1; k < s; k++) {
          out.copyWithin(o, start, start + OW);
          o += OW;
        }
      }
    }
  },

  /** gx[p, h, w] = Σ_{a,b < s} gy[p, h·s + a, w·s + b]; gy [NC, H·s, W·s], gx [NC, H, W]. */
  upsampleNearestBackward(gy: FloatArray, NC: number, H: number, W: number, s: number, gx: FloatArray): void {
    const OW = W * s;
    for (let p = 0; p < NC; p++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          let acc = 0;
          for (let a = 0; a < s; a++) {
            const base = (p * H * s + h * s + a) * OW + w * s;
            for (let b = 0; b < s; b++) acc += gy[base + b];
          }
          gx[(p * H + h) * W + w] = acc;
        }
      }
    }
  },

  /**
   * out[p, oh, ow] = mean of x[p, oh·stride + i, ow·stride + j] over i, j < k (no padding);
   * x [NC, H, W], out [NC, OH, OW] with OH = ⌊(H − k) / stride⌋ + 1.
   */
  avgPool2dForward(x: FloatArray, NC: number, H: number, W: number, k: number, stride: number, OH: number, OW: number, out: FloatArray): void {
    const inv = 1 / (k * k);
    for (let p = 0; p < NC; p++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let acc = 0;
          for (let i = 0; i < k; i++) {
            const base = (p * H + oh * stride + i) * W + ow * stride;
            for (let j = 0; j < k; j++) acc += x[base + j];
          }
          out[(p * OH + oh) * OW + ow] = acc * inv;
        }
      }
    }
  },

  /** gx[p, h, w] = Σ over windows containing (h, w) of gy[p, oh, ow] / k²; gy [NC, OH, OW], gx [NC, H, W]. */
  /**
   * 2×2 max pooling, stride 2: out[p, oh, ow] = max of x[p, 2oh…2oh+1, 2ow…2ow+1], and arg = the winner's index
   * in its plane, the first in row-major order (a NaN wins, as in PyTorch's max_pool2d).
   */
  maxPool2x2Forward(x: FloatArray, NC: number, H: number, W: number, OH: number, OW: number, out: FloatArray, arg: Int32Array): void {
    for (let p = 0; p < NC; p++) {
      const base = p * H * W;
      for (let oh = 0; oh < OH; oh++) {
        const o0 = (p * OH + oh) * OW;
        for (let ow = 0; ow < OW; ow++) {
          const i0 = 2 * oh * W + 2 * ow, r = base + i0;
          const b = x[r + 1], c = x[r + W], d = x[r + W + 1];
          let best = i0, v = x[r];
          if (v === v) {
            if (b > v || b !== b) (v = b), (best = i0 + 1);
            if (v === v && (c > v || c !== c)) (v = c), (best = i0 + W);
            if (v === v && (d > v || d !== d)) (v = d), (best = i0 + W + 1);
          }
          out[o0 + ow] = v;
          arg[o0 + ow] = best;
        }
      }
    }
  },

  /** gx = 0 except gx[p, arg[p, o]] += gy[p, o] (the forward's winners). */
  maxPool2x2Backward(gy: FloatArray, arg: Int32Array, NC: number, H: number, W: number, OH: number, OW: number, gx: FloatArray): void {
    gx.fill(0);
    const P = OH * OW, HW = H * W;
    for (let p = 0; p < NC; p++) {
      for (let o = 0; o < P; o++) gx[p * HW + arg[p * P + o]] += gy[p * P + o];
    }
  },

  avgPool2dBackward(gy: FloatArray, NC: number, H: number, W: number, k: number, stride: number, OH: number, OW: number, gx: FloatArray): void {
    gx.fill(0);
    const inv = 1 / (k * k);
    for (let p = 0; p < NC; p++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const g = gy[(p * OH + oh) * OW + ow] * inv;
          for (let i = 0; i < k; i++) {
            const base = (p * H + oh * stride + i) * W + ow * stride;
            for (let j = 0; j < k; j++) gx[base + j] += g;
          }
        }
      }
    }
  },

  /**
   * Bilinear resampling, align_corners = false: x [NC, H, W] → out [NC, OH, OW]. scaleH/scaleW are the
   * source-per-destination ratios (H/OH and W/OW when a size is given, 1/scale_factor when a factor is).
   */
  bilinearForward(x: FloatArray, NC: number, H: number, W: number, OH: number, OW: number, scaleH: number, scaleW: number, out: FloatArray): void {
    const th = bilinearTaps(H, OH, scaleH), tw = bilinearTaps(W, OW, scaleW);
    for (let p = 0; p < NC; p++) {
      const plane = p * H * W;
      for (let oh = 0; oh < OH; oh++) {
        const r0 = plane + th.i0[oh] * W, r1 = plane + th.i1[oh] * W;
        const a0 = th.w0[oh], a1 = th.w1[oh];
        const orow = (p * OH + oh) * OW;
        for (let ow = 0; ow < OW; ow++) {
          const c0 = tw.i0[ow], c1 = tw.i1[ow], b0 = tw.w0[ow], b1 = tw.w1[ow];
          out[orow + ow] = a0 * (b0 * x[r0 + c0] + b1 * x[r0 + c1]) + a1 * (b0 * x[r1 + c0] + b1 * x[r1 + c1]);
        }
      }
    }
  },

  /** Adjoint of bilinearForward: gy [NC, OH, OW] → gx [NC, H, W]. */
  bilinearBackward(gy: FloatArray, NC: number, H: number, W: number, OH: number, OW: number, scaleH: number, scaleW: number, gx: FloatArray): void {
    gx.fill(0);
    const th = bilinearTaps(H, OH, scaleH), tw = bilinearTaps(W, OW, scaleW);
    for (let p = 0; p < NC; p++) {
      const plane = p * H * W;
      for (let oh = 0; oh < OH; oh++) {
        const r0 = plane + th.i0[oh] * W, r1 = plane + th.i1[oh] * W;
        const a0 = th.w0[oh], a1 = th.w1[oh];
        const orow = (p * OH + oh) * OW;
        for (let ow = 0; ow < OW; ow++) {
          const g = gy[orow + ow];
          const c0 = tw.i0[ow], c1 = tw.i1[ow], b0 = tw.w0[ow], b1 = tw.w1[ow];
          gx[r0 + c0] += a0 * b0 * g;
          gx[r0 + c1] += a0 * b1 * g;
          gx[r1 + c0] += a1 * b0 * g;
          gx[r1 + c1] += a1 * b1 * g;
        }
      }
    }
  },
};

export type ResampleKernels = typeof tsResample;
