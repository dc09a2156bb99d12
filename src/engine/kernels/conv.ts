// Reference 2-D convolution kernels (groups = 1, dilation 1), written as im2col + GEMM so that the
// TypeScript fallback stays usable; a 1×1, stride-1, unpadded convolution is a plain GEMM.
//
// Layouts (all buffers contiguous, row-major, Float32Array or Float64Array of one dtype):
//   x  [N, C, H, W]        input
//   w  [O, C, kh, kw]      weights
//   b  [O]                 bias
//   y  [N, O, OH, OW]      output, OH = ⌊(H + padTop + padBottom − kh) / sh⌋ + 1 (same for OW)
// The caller computes OH/OW (bottom/right padding is implied by them); input positions outside
// [0, H) × [0, W) read as zero. Every kernel overwrites its outputs (no accumulation into them).
//
// Called through a kernel table (K.conv2dForward(...)), the kernels use that table's GEMM.
// The column buffer covers a block of output rows at a time (at most `colBudget` elements, at least one
// output row), so memory stays bounded for large images.

import type { FloatArray } from '../dtype.js';
import { tsGemm, type GemmKernels } from './gemm.js';

type Gemm = GemmKernels['gemm'];

/**
 * The GEMM to use: the table the kernel was called through (`K.conv2dForward(...)` → K.gemm, so a faster
 * installed GEMM is used), else the reference one. (Importing K here would make an import cycle.)
 */
function gemmOf(self: unknown): Gemm {
  const g = (self as Partial<GemmKernels> | undefined)?.gemm;
  return typeof g === 'function' ? g : tsGemm.gemm;
}

let colBudget = 1 << 22;

/** Column-buffer budget in elements (tests shrink it to exercise the row blocking). Returns the old value. */
export function setConvColumnBudget(elements: number): number {
  const old = colBudget;
  colBudget = Math.max(1, Math.floor(elements));
  return old;
}

/**
 * The geometry of one convolution, passed as one object through the op, the kernel table and the native
 * addon (native/common.h's ConvGeom has the same fields): batch N, input channels C and size H × W, output
 * channels O, kernel kh × kw, strides sh, sw, top/left padding (bottom/right padding is implied by the
 * output size OH × OW).
 */
export interface ConvGeometry {
  N: number; C: number; H: number; W: number; O: number; kh: number; kw: number;
  sh: number; sw: number; padTop: number; padLeft: number; OH: number; OW: number;
}

function alloc(like: FloatArray, n: number): FloatArray {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

function rowsPerBlock(g: ConvGeometry): number {
  const ckk = g.C * g.kh * g.kw;
  return Math.max(1, Math.min(g.OH, Math.floor(colBudget / Math.max(1, ckk * g.OW))));
}

function isPointwise(g: ConvGeometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.padTop === 0 && g.padLeft === 0 && g.OH === g.H && g.OW === g.W;
}

/**
 * col[(c·kh + i)·kw + j, (oh − oh0)·OW + ow] = x[n, c, oh·sh − padTop + i, ow·sw − padLeft + j] (0 outside),
 * for output rows oh0 ≤ oh < oh0 + rows. When `transposed`, col is stored as [rows·OW, C·kh·kw] instead.
 */
function im2col(x: FloatArray, xOff: number, g: ConvGeometry, oh0: number, rows: number, col: FloatArray, transposed: boolean): void {
  const { C, H, W, kh, kw, sh, sw, padTop, padLeft, OW } = g;
  const P = rows * OW;
  const ckk = C * kh * kw;
  for (let c = 0; c < C; c++) {
    const xc = xOff + c * H * W;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const r = (c * kh + i) * kw + j;
        for (let q = 0; q < rows; q++) {
          const ih = (oh0 + q) * sh - padTop + i;
          const inRow = ih >= 0 && ih < H;
          const xr = xc + ih * W;
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * sw - padLeft + j;
            const v = inRow && iw >= 0 && iw < W ? x[xr + iw] : 0;
            const p = q * OW + ow;
            if (transposed) col[p * ckk + r] = v;
            else col[r * P + p] = v;
          }
        }
      }
    }
  }
}

/** Inverse of im2col: gx[n, c, ih, iw] += col[...] for the block of output rows (col is [C·kh·kw, rows·OW]). */
function col2im(col: FloatArray, g: ConvGeometry, oh0: number, rows: number, gx: FloatArray, gxOff: number): void {
  const { C, H, W, kh, kw, sh, sw, padTop, padLeft, OW } = g;
  const P = rows * OW;
  for (let c = 0; c < C; c++) {
    const gc = gxOff + c * H * W;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const r = ((c * kh + i) * kw + j) * P;
        for (let q = 0; q < rows; q++) {
          const ih = (oh0 + q) * sh - padTop + i;
          if (ih < 0 || ih >= H) continue;
          const gr = gc + ih * W;
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * sw - padLeft + j;
            if (iw >= 0 && iw < W) gx[gr + iw] += col[r + q * OW + ow];
          }
        }
      }
    }
  }
}

export const tsConv = {
  /**
   * Forward convolution: out[n, o, oh, ow] = bias[o] + Σ_{c,i,j} w[o, c, i, j] · x[n, c, oh·sh − padTop + i, ow·sw − padLeft + j].
   * x [N, C, H, W], w [O, C, kh, kw], bias [O] or null, out [N, O, OH, OW] (overwritten); sizes from `g`.
   * `packed`: w's pack from conv2dPackWeights for this geometry (kernels that pack nothing never get one).
   */
  conv2dForward(this: unknown, g: ConvGeometry, x: FloatArray, w: FloatArray, bias: FloatArray | null, out: FloatArray, packed?: Float32Array | null): void {
    const gemm = gemmOf(this);
    const { N, C, H, W, O, kh, kw, OH, OW } = g;
    const ckk = C * kh * kw;
    const P = OH * OW;
    if (isPointwise(g)) {
      gemm({
        transA: false, transB: false, M: O, N: P, K: C, alpha: 1,
        A: w, aOffset: 0, lda: C, strideA: 0, B: x, bOffset: 0, ldb: P, strideB: C * P,
        beta: 0, C: out, cOffset: 0, ldc: P, strideC: O * P, batch: N,
      });
    } else {
      const rb = rowsPerBlock(g);
      const col = alloc(x, ckk * rb * OW);
      for (let n = 0; n < N; n++) {
        for (let oh0 = 0; oh0 < OH; oh0 += rb) {
          const rows = Math.min(rb, OH - oh0);
          im2col(x, n * C * H * W, g, oh0, rows, col, false);
          gemm({
            transA: false, transB: false, M: O, N: rows * OW, K: ckk, alpha: 1,
            A: w, aOffset: 0, lda: ckk, strideA: 0, B: col, bOffset: 0, ldb: rows * OW, strideB: 0,
            beta: 0, C: out, cOffset: n * O * P + oh0 * OW, ldc: P, strideC: 0, batch: 1,
          });
        }
      }
    }
    if (bias) {
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < O; o++) {
          const b = bias[o];
          const base = (n * O + o) * P;
          for (let p = 0; p < P; p++) out[base + p] += b;
        }
      }
    }
  },

  /**
   * Gradient of the input: gx[n, c, ih, iw] = Σ over every (o, oh, ow, i, j) that read x[n, c, ih, iw] of
   * w[o, c, i, j] · gy[n, o, oh, ow]. gy [N, O, OH, OW], w [O, C, kh, kw], gx [N, C, H, W] (overwritten).
   */
  conv2dBackwardInput(this: unknown, g: ConvGeometry, gy: FloatArray, w: FloatArray, gx: FloatArray): void {
    const gemm = gemmOf(this);
    const { N, C, H, W, O, kh, kw, OH, OW } = g;
    const ckk = C * kh * kw;
    const P = OH * OW;
    if (isPointwise(g)) {
      gemm({
        transA: true, transB: false, M: C, N: P, K: O, alpha: 1,
        A: w, aOffset: 0, lda: C, strideA: 0, B: gy, bOffset: 0, ldb: P, strideB: O * P,
        beta: 0, C: gx, cOffset: 0, ldc: P, strideC: C * P, batch: N,
      });
      return;
    }
    gx.fill(0);
    const rb = rowsPerBlock(g);
    const col = alloc(gy, ckk * rb * OW);
    for (let n = 0; n < N; n++) {
      for (let oh0 = 0; oh0 < OH; oh0 += rb) {
        const rows = Math.min(rb, OH - oh0);
        gemm({
          transA: true, transB: false, M: ckk, N: rows * OW, K: O, alpha: 1,
          A: w, aOffset: 0, lda: ckk, strideA: 0, B: gy, bOffset: n * O * P + oh0 * OW, ldb: P, strideB: 0,
          beta: 0, C: col, cOffset: 0, ldc: rows * OW, strideC: 0, batch: 1,
        });
        col2im(col, g, oh0, rows, gx, n * C * H * W);
      }
    }
  },

  /**
   * Gradients of the weights and bias: gw[o, c, i, j] = Σ_{n,oh,ow} gy[n, o, oh, ow] · x[n, c, oh·sh − padTop + i, ow·sw − padLeft + j],
   * gb[o] = Σ_{n,oh,ow} gy[n, o, oh, ow]. x [N, C, H, W], gy [N, O, OH, OW], gw [O, C, kh, kw], gb [O] or null
   * (both overwritten).
   */
  conv2dBackwardWeight(this: unknown, g: ConvGeometry, x: FloatArray, gy: FloatArray, gw: FloatArray, gb: FloatArray | null): void {
    const gemm = gemmOf(this);
    const { N, C, H, W, O, kh, kw, OH, OW } = g;
    const ckk = C * kh * kw;
    const P = OH * OW;
    if (isPointwise(g)) {
      if (N === 0) gw.fill(0);
      // gw[O, C] = Σ_n gy[n] (O×P) · x[n]ᵀ (P×C); x[n] is C×P, i.e. a transposed operand.
      for (let n = 0; n < N; n++) {
        gemm({
          transA: false, transB: true, M: O, N: C, K: P, alpha: 1,
          A: gy, aOffset: n * O * P, lda: P, strideA: 0, B: x, bOffset: n * C * P, ldb: P, strideB: 0,
          beta: n === 0 ? 0 : 1, C: gw, cOffset: 0, ldc: C, strideC: 0, batch: 1,
        });
      }
    } else {
      const rb = rowsPerBlock(g);
      const colT = alloc(x, ckk * rb * OW);
      let first = true;
      for (let n = 0; n < N; n++) {
        for (let oh0 = 0; oh0 < OH; oh0 += rb) {
          const rows = Math.min(rb, OH - oh0);
          im2col(x, n * C * H * W, g, oh0, rows, colT, true);
          gemm({
            transA: false, transB: false, M: O, N: ckk, K: rows * OW, alpha: 1,
            A: gy, aOffset: n * O * P + oh0 * OW, lda: P, strideA: 0, B: colT, bOffset: 0, ldb: ckk, strideB: 0,
            beta: first ? 0 : 1, C: gw, cOffset: 0, ldc: ckk, strideC: 0, batch: 1,
          });
          first = false;
        }
      }
      if (first) gw.fill(0);
    }
    if (gb) {
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let n = 0; n < N; n++) {
          const base = (n * O + o) * P;
          for (let p = 0; p < P; p++) s += gy[base + p];
        }
        gb[o] = s;
      }
    }
  },

  /**
   * Size (floats) and layout tag of the pack that conv2dForward can take for w in geometry g, or null where its
   * forward has nothing to keep across calls (these reference kernels never do; the native ones keep Winograd's
   * transformed kernels: weight-cache.ts).
   */
  conv2dPackInfo(g: ConvGeometry): { floats: number; layout: number } | null {
    return null;
  },

  /** Writes w's pack for geometry g into dst (conv2dPackInfo(g).floats long). */
  conv2dPackWeights(g: ConvGeometry, w: FloatArray, dst: Float32Array): void {
    throw new Error('conv2dPackWeights: these kernels pack no convolution weights (conv2dPackInfo returned null)');
  },
};

export type ConvKernels = typeof tsConv;
