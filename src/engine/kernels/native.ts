// Loads the native kernel addon (build/Release/ldm_native.node, built from native/ by `npm install`) and
// installs its kernels over the TypeScript ones. Every override runs native code only when all its float
// buffers are Float32Array and forwards anything else (float64 gradient checks) to the reference kernel.
//
// LDM_BACKEND=ts keeps the TypeScript kernels (the addon is still loadable with useNativeKernels()).
// When the addon is missing or does not load, one warning line is printed and the TypeScript kernels stay.
// LDM_NUM_THREADS sets the addon's thread count; LDM_ISA=avx512|avx2|base picks a kernel set (tests);
// LDM_NATIVE_ADDON=<file> loads another build of the addon instead (A/B benchmarks of kernel changes).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FloatArray } from '../dtype.js';
import type { ConvGeometry } from './conv.js';
import type { BinaryOp, Strided, UnaryOp } from './elementwise.js';
import type { GemmArgs } from './gemm.js';
import { installKernels, tsKernels, type Kernels } from './index.js';
import type { AdamHyper } from './optim.js';

/**
 * The addon's raw entry points (see native/binding.cc; the kernel list itself is native/kernel_list.h, and
 * info() reports which kernels this build has and how many arguments each takes).
 */
export interface NativeAddon {
  info(): { isa: string; threads: number; isas: string[]; kernels: string[]; args: Record<string, number> };
  setIsa(name: string): boolean;
  setThreads(n: number): void;
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, sA: number, B: Float32Array, bOff: number, ldb: number, sB: number,
    beta: number, C: Float32Array, cOff: number, ldc: number, sC: number, batch: number, bias: Float32Array | null,
    packedB?: Float32Array | null): void;
  gemmPackB(K: number, N: number, B: Float32Array | null, bOff: number, ldb: number, transB: boolean, dst: null): [number, number];
  gemmPackB(K: number, N: number, B: Float32Array, bOff: number, ldb: number, transB: boolean, dst: Float32Array): void;
  unary(op: number, x: Float32Array, xOff: number, xStrides: readonly number[], out: Float32Array, shape: readonly number[], p: number, q: number): void;
  unaryBackward(op: number, x: Float32Array, y: Float32Array, g: Float32Array, out: Float32Array, p: number, q: number): void;
  binary(op: number, a: Float32Array, aOff: number, aStrides: readonly number[], b: Float32Array, bOff: number,
    bStrides: readonly number[], out: Float32Array, shape: readonly number[]): void;
  where(c: Float32Array, cOff: number, cStrides: readonly number[], a: Float32Array, aOff: number, aStrides: readonly number[],
    b: Float32Array, bOff: number, bStrides: readonly number[], out: Float32Array, shape: readonly number[]): void;
  sum(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void;
  conv2dForward(g: ConvGeometry, x: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, packed?: Float32Array | null): void;
  conv2dPackWeights(g: ConvGeometry, w: Float32Array | null, dst: null): [number, number];
  conv2dPackWeights(g: ConvGeometry, w: Float32Array, dst: Float32Array): void;
  conv2dBackwardInput(g: ConvGeometry, gy: Float32Array, w: Float32Array, gx: Float32Array): void;
  conv2dBackwardWeight(g: ConvGeometry, x: Float32Array, gy: Float32Array, gw: Float32Array, gb: Float32Array | null): void;
  groupNormForward(x: Float32Array, N: number, C: number, HW: number, G: number, eps: number, gamma: Float32Array | null,
    beta: Float32Array | null, silu: boolean, out: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  groupNormBackward(x: Float32Array, gy: Float32Array, N: number, C: number, HW: number, G: number, gamma: Float32Array | null,
    beta: Float32Array | null, silu: boolean, mean: Float32Array, rstd: Float32Array, gx: Float32Array,
    ggamma: Float32Array | null, gbeta: Float32Array | null): void;
  layerNormForward(x: Float32Array, rows: number, cols: number, eps: number, gamma: Float32Array | null, beta: Float32Array | null,
    out: Float32Array, mean: Float32Array, rstd: Float32Array): void;
  layerNormBackward(x: Float32Array, gy: Float32Array, rows: number, cols: number, gamma: Float32Array | null, mean: Float32Array,
    rstd: Float32Array, gx: Float32Array, ggamma: Float32Array | null, gbeta: Float32Array | null): void;
  softmaxForward(x: Float32Array, rows: number, cols: number, out: Float32Array, log: boolean): void;
  softmaxBackward(y: Float32Array, gy: Float32Array, rows: number, cols: number, gx: Float32Array, log: boolean): void;
  attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, B: number, Lq: number, Lk: number, D: number, Dv: number,
    scale: number, out: Float32Array, lse: Float32Array, H: number): void;
  attentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, gout: Float32Array, lse: Float32Array,
    B: number, Lq: number, Lk: number, D: number, Dv: number, scale: number, gq: Float32Array, gk: Float32Array, gv: Float32Array,
    H: number): void;
  upsampleNearestForward(x: Float32Array, NC: number, H: number, W: number, s: number, out: Float32Array): void;
  upsampleNearestBackward(gy: Float32Array, NC: number, H: number, W: number, s: number, gx: Float32Array): void;
  avgPool2dForward(x: Float32Array, NC: number, H: number, W: number, k: number, stride: number, OH: number, OW: number, out: Float32Array): void;
  avgPool2dBackward(gy: Float32Array, NC: number, H: number, W: number, k: number, stride: number, OH: number, OW: number, gx: Float32Array): void;
  bilinearForward(x: Float32Array, NC: number, H: number, W: number, OH: number, OW: number, scaleH: number, scaleW: number, out: Float32Array): void;
  bilinearBackward(gy: Float32Array, NC: number, H: number, W: number, OH: number, OW: number, scaleH: number, scaleW: number, gx: Float32Array): void;
  extreme(x: Float32Array, outer: number, n: number, inner: number, out: Float32Array, idx: Int32Array, isMax: boolean): void;
  /** The active ISA's FMA peak on the pool's threads: 12 chains × iters per thread; out[0] = floats per vector (bench only). */
  fmaPeak(iters: number, out: Float32Array): void;
  /** One Adam/AdamW step over n float32 elements, bit-identical to the reference kernel (kernels/optim.ts), computed in double. */
  adamUpdate(w: Float32Array, wOff: number, grad: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, n: number,
    h: AdamHyper): void;
}

// Op codes, in the order of the enums in native/common.h.
const UNARY_OPS: readonly UnaryOp[] = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'abs', 'sigmoid', 'tanh', 'silu', 'gelu', 'relu',
  'leaky_relu', 'square', 'reciprocal', 'sign', 'pow_scalar', 'clamp', 'add_scalar', 'mul_scalar', 'rsub_scalar', 'copy',
];
const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'gt', 'lt', 'ge', 'le', 'eq'];
const unaryCode = new Map(UNARY_OPS.map((o, i) => [o, i]));
const binaryCode = new Map(BINARY_OPS.map((o, i) => [o, i]));

/** The addon: build/Release/ldm_native.node, or the file LDM_NATIVE_ADDON names (another build, for A/B benchmarks). */
export const ADDON_PATH = process.env.LDM_NATIVE_ADDON
  ? resolve(process.env.LDM_NATIVE_ADDON)
  : fileURLToPath(new URL('../../../build/Release/ldm_native.node', import.meta.url));

let addon: NativeAddon | null = null;
let loadError: string | null = null;
let tried = false;

function load(): NativeAddon | null {
  if (tried) return addon;
  tried = true;
  if (!existsSync(ADDON_PATH)) {
    loadError = `${ADDON_PATH} is not built (run npm install or node scripts/build-native.mjs)`;
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    loadError = e instanceof Error ? e.message.split('\n')[0] : String(e);
    addon = null;
  }
  return addon;
}

/** True when the native addon is built and loads. */
export function nativeAvailable(): boolean {
  return load() !== null;
}

/** The loaded addon (throws if unavailable): for tests and benchmarks (setIsa, setThreads, info, raw kernels). */
export function nativeAddon(): NativeAddon {
  const a = load();
  if (!a) throw new Error(`ldm: native kernels unavailable: ${loadError}`);
  return a;
}

/** Why the addon is unavailable (null when it loaded). */
export function nativeLoadError(): string | null {
  load();
  return loadError;
}

const f32 = (x: unknown): x is Float32Array => x instanceof Float32Array;
const f32OrNull = (x: unknown): x is Float32Array | null => x === null || x instanceof Float32Array;

function overrides(n: NativeAddon): Partial<Kernels> {
  const ts = tsKernels;
  const all: Partial<Kernels> = {
    gemm(g: GemmArgs): void {
      if (!f32(g.A) || !f32(g.B) || !f32(g.C) || (g.bias && !f32(g.bias))) return ts.gemm(g);
      n.gemm(g.transA, g.transB, g.M, g.N, g.K, g.alpha, g.A, g.aOffset, g.lda, g.strideA, g.B, g.bOffset, g.ldb, g.strideB,
        g.beta, g.C, g.cOffset, g.ldc, g.strideC, g.batch, g.bias ?? null, g.packedB ?? null);
    },
    gemmPackInfo(K, N) {
      const [floats, layout] = n.gemmPackB(K, N, null, 0, 0, false, null);
      return floats > 0 ? { floats, layout } : null;
    },
    gemmPackB(K, N, B, bOffset, ldb, transB, dst) {
      if (!f32(B)) return ts.gemmPackB(K, N, B, bOffset, ldb, transB, dst);
      n.gemmPackB(K, N, B, bOffset, ldb, transB, dst);
    },
    unary(op: UnaryOp, x: Strided, out: FloatArray, shape: readonly number[], p = 0, q = 0): void {
      const code = unaryCode.get(op);
      if (code === undefined || !f32(x.data) || !f32(out)) return ts.unary(op, x, out, shape, p, q);
      n.unary(code, x.data, x.offset, x.strides, out, shape, p, q);
    },
    unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, g: FloatArray, out: FloatArray, p = 0, q = 0): void {
      const code = unaryCode.get(op);
      if (code === undefined || !f32(x) || !f32(y) || !f32(g) || !f32(out)) return ts.unaryBackward(op, x, y, g, out, p, q);
      n.unaryBackward(code, x, y, g, out, p, q);
    },
    binary(op: BinaryOp, a: Strided, b: Strided, out: FloatArray, shape: readonly number[]): void {
      const code = binaryCode.get(op);
      if (code === undefined || !f32(a.data) || !f32(b.data) || !f32(out)) return ts.binary(op, a, b, out, shape);
      n.binary(code, a.data, a.offset, a.strides, b.data, b.offset, b.strides, out, shape);
    },
    where(cond: Strided, a: Strided, b: Strided, out: FloatArray, shape: readonly number[]): void {
      if (!f32(cond.data) || !f32(a.data) || !f32(b.data) || !f32(out)) return ts.where(cond, a, b, out, shape);
      n.where(cond.data, cond.offset, cond.strides, a.data, a.offset, a.strides, b.data, b.offset, b.strides, out, shape);
    },
    copyStrided(x: Strided, out: FloatArray | Int32Array, shape: readonly number[]): void {
      if (!f32(x.data) || !f32(out)) return ts.copyStrided(x, out, shape);
      n.unary(unaryCode.get('copy')!, x.data, x.offset, x.strides, out, shape, 0, 0);
    },
    sum(x: FloatArray, outer: number, len: number, inner: number, out: FloatArray): void {
      if (!f32(x) || !f32(out)) return ts.sum(x, outer, len, inner, out);
      n.sum(x, outer, len, inner, out);
    },
    // The reference convolutions run the GEMM of the table they are called through (`this`).
    conv2dForward(this: unknown, g, x, w, bias, out, packed = null) {
      if (!f32(x) || !f32(w) || !f32OrNull(bias) || !f32(out)) return ts.conv2dForward.call(this, g, x, w, bias, out);
      n.conv2dForward(g, x, w, bias, out, packed);
    },
    conv2dPackInfo(g) {
      const [floats, layout] = n.conv2dPackWeights(g, null, null);
      return floats > 0 ? { floats, layout } : null;
    },
    conv2dPackWeights(g, w, dst) {
      if (!f32(w)) return ts.conv2dPackWeights(g, w, dst);
      n.conv2dPackWeights(g, w, dst);
    },
    conv2dBackwardInput(this: unknown, g, gy, w, gx) {
      if (!f32(gy) || !f32(w) || !f32(gx)) return ts.conv2dBackwardInput.call(this, g, gy, w, gx);
      n.conv2dBackwardInput(g, gy, w, gx);
    },
    conv2dBackwardWeight(this: unknown, g, x, gy, gw, gb) {
      if (!f32(x) || !f32(gy) || !f32(gw) || !f32OrNull(gb)) return ts.conv2dBackwardWeight.call(this, g, x, gy, gw, gb);
      n.conv2dBackwardWeight(g, x, gy, gw, gb);
    },
    groupNormForward(x, N, C, HW, G, eps, gamma, beta, silu, out, mean, rstd) {
      if (!f32(x) || !f32OrNull(gamma) || !f32OrNull(beta) || !f32(out) || !f32(mean) || !f32(rstd)) {
        return ts.groupNormForward(x, N, C, HW, G, eps, gamma, beta, silu, out, mean, rstd);
      }
      n.groupNormForward(x, N, C, HW, G, eps, gamma, beta, silu, out, mean, rstd);
    },
    groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, ggamma, gbeta) {
      if (!f32(x) || !f32(gy) || !f32OrNull(gamma) || !f32OrNull(beta) || !f32(mean) || !f32(rstd) || !f32(gx) ||
        !f32OrNull(ggamma) || !f32OrNull(gbeta)) {
        return ts.groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, ggamma, gbeta);
      }
      n.groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, ggamma, gbeta);
    },
    layerNormForward(x, rows, cols, eps, gamma, beta, out, mean, rstd) {
      if (!f32(x) || !f32OrNull(gamma) || !f32OrNull(beta) || !f32(out) || !f32(mean) || !f32(rstd)) {
        return ts.layerNormForward(x, rows, cols, eps, gamma, beta, out, mean, rstd);
      }
      n.layerNormForward(x, rows, cols, eps, gamma, beta, out, mean, rstd);
    },
    layerNormBackward(x, gy, rows, cols, gamma, mean, rstd, gx, ggamma, gbeta) {
      if (!f32(x) || !f32(gy) || !f32OrNull(gamma) || !f32(mean) || !f32(rstd) || !f32(gx) || !f32OrNull(ggamma) || !f32OrNull(gbeta)) {
        return ts.layerNormBackward(x, gy, rows, cols, gamma, mean, rstd, gx, ggamma, gbeta);
      }
      n.layerNormBackward(x, gy, rows, cols, gamma, mean, rstd, gx, ggamma, gbeta);
    },
    softmaxForward(x, rows, cols, out) {
      if (!f32(x) || !f32(out)) return ts.softmaxForward(x, rows, cols, out);
      n.softmaxForward(x, rows, cols, out, false);
    },
    softmaxBackward(y, gy, rows, cols, gx) {
      if (!f32(y) || !f32(gy) || !f32(gx)) return ts.softmaxBackward(y, gy, rows, cols, gx);
      n.softmaxBackward(y, gy, rows, cols, gx, false);
    },
    logSoftmaxForward(x, rows, cols, out) {
      if (!f32(x) || !f32(out)) return ts.logSoftmaxForward(x, rows, cols, out);
      n.softmaxForward(x, rows, cols, out, true);
    },
    logSoftmaxBackward(y, gy, rows, cols, gx) {
      if (!f32(y) || !f32(gy) || !f32(gx)) return ts.logSoftmaxBackward(y, gy, rows, cols, gx);
      n.softmaxBackward(y, gy, rows, cols, gx, true);
    },
    attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H = 1) {
      if (!f32(q) || !f32(k) || !f32(v) || !f32(out) || !f32(lse)) return ts.attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H);
      n.attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H);
    },
    attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H = 1) {
      if (!f32(q) || !f32(k) || !f32(v) || !f32(out) || !f32(gout) || !f32(lse) || !f32(gq) || !f32(gk) || !f32(gv)) {
        return ts.attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H);
      }
      n.attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H);
    },
    upsampleNearestForward(x, NC, H, W, s, out) {
      if (!f32(x) || !f32(out)) return ts.upsampleNearestForward(x, NC, H, W, s, out);
      n.upsampleNearestForward(x, NC, H, W, s, out);
    },
    upsampleNearestBackward(gy, NC, H, W, s, gx) {
      if (!f32(gy) || !f32(gx)) return ts.upsampleNearestBackward(gy, NC, H, W, s, gx);
      n.upsampleNearestBackward(gy, NC, H, W, s, gx);
    },
    avgPool2dForward(x, NC, H, W, k, stride, OH, OW, out) {
      if (!f32(x) || !f32(out)) return ts.avgPool2dForward(x, NC, H, W, k, stride, OH, OW, out);
      n.avgPool2dForward(x, NC, H, W, k, stride, OH, OW, out);
    },
    avgPool2dBackward(gy, NC, H, W, k, stride, OH, OW, gx) {
      if (!f32(gy) || !f32(gx)) return ts.avgPool2dBackward(gy, NC, H, W, k, stride, OH, OW, gx);
      n.avgPool2dBackward(gy, NC, H, W, k, stride, OH, OW, gx);
    },
    bilinearForward(x, NC, H, W, OH, OW, scaleH, scaleW, out) {
      if (!f32(x) || !f32(out)) return ts.bilinearForward(x, NC, H, W, OH, OW, scaleH, scaleW, out);
      n.bilinearForward(x, NC, H, W, OH, OW, scaleH, scaleW, out);
    },
    bilinearBackward(gy, NC, H, W, OH, OW, scaleH, scaleW, gx) {
      if (!f32(gy) || !f32(gx)) return ts.bilinearBackward(gy, NC, H, W, OH, OW, scaleH, scaleW, gx);
      n.bilinearBackward(gy, NC, H, W, OH, OW, scaleH, scaleW, gx);
    },
    extreme(x, outer, len, inner, out, idx, isMax) {
      if (!f32(x) || !f32(out) || len === 0) return ts.extreme(x, outer, len, inner, out, idx, isMax);
      n.extreme(x, outer, len, inner, out, idx, isMax);
    },
    adamUpdate(w, wOff, grad, m, v, vmax, len, h) {
      if (!f32(w) || !f32(grad) || !f32(m) || !f32(v) || !f32OrNull(vmax)) return ts.adamUpdate(w, wOff, grad, m, v, vmax, len, h);
      n.adamUpdate(w, wOff, grad, m, v, vmax, len, h);
    },
  };
  // Install only what this build implements (copyStrided and logSoftmax ride on unary and softmax).
  const present = new Set(n.info().kernels);
  const rides: Record<string, string> = {
    copyStrided: 'unary', logSoftmaxForward: 'softmaxForward', logSoftmaxBackward: 'softmaxBackward', conv2dPackInfo: 'conv2dPackWeights', gemmPackInfo: 'gemmPackB',
  };
  const out: Partial<Kernels> = {};
  for (const [name, fn] of Object.entries(all)) {
    if (present.has(rides[name] ?? name)) (out as Record<string, unknown>)[name] = fn;
  }
  return out;
}

/** Install the native kernels (returns false, leaving the active kernels alone, when the addon is unavailable). */
export function useNativeKernels(): boolean {
  const n = load();
  if (!n) return false;
  installKernels('native', overrides(n));
  return true;
}

// At import: native kernels unless LDM_BACKEND=ts.
if (process.env.LDM_BACKEND !== 'ts') {
  if (!useNativeKernels()) {
    console.warn(`ldm: native kernels unavailable (${loadError}); using the TypeScript kernels`);
  }
}
