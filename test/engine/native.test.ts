// Native kernels (native/, loaded by src/engine/kernels/native.ts) against the TypeScript reference
// kernels, for every instruction set this CPU runs (AVX-512, AVX2, portable). The references run in
// float64 on the same float32 inputs; tolerances scale with the size of the sums involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { backendName, K, tsKernels, useReferenceKernels } from '../../src/engine/kernels/index.js';
import { nativeAddon, nativeAvailable, nativeLoadError, useNativeKernels, type NativeAddon } from '../../src/engine/kernels/native.js';
import { Adam, AdamW, Parameter, type Optimizer } from '../../src/nn/index.js';

const required = process.env.CI === 'true' || process.env.LDM_REQUIRE_NATIVE === '1';
const available = nativeAvailable();
if (!available && required) {
  test('native addon is built', () => assert.fail(`native addon unavailable: ${nativeLoadError()}`));
}
const skip = available ? false : `native addon not built (${nativeLoadError()}); run npm install`;

// ---- helpers ------------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-1, 1) (float32). */
function rand32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

const f64 = (a: Float32Array) => Float64Array.from(a);

/** |actual − expected| ≤ atol + rtol·|expected| elementwise, or bound[i]·tol when a bound is given. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-5, atol = 1e-6, bound?: ArrayLike<number>): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i], a = actual[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const tol = bound ? atol + rtol * bound[i] : atol + rtol * Math.abs(e);
    if (!(Math.abs(a - e) <= tol)) assert.fail(`${what}: element ${i}: native ${a} vs reference ${e} (tolerance ${tol})`);
  }
}

function isas(n: NativeAddon): string[] {
  return n.info().isas;
}

/** Run body once per instruction set (restoring the automatic choice afterwards). */
function eachIsa(body: (n: NativeAddon, isa: string) => void): void {
  const n = nativeAddon();
  try {
    for (const isa of isas(n)) {
      assert.ok(n.setIsa(isa), `setIsa(${isa})`);
      body(n, isa);
    }
  } finally {
    n.setIsa('auto');
  }
}

// ---- GEMM ---------------------------------------------------------------------------------------------

interface GemmCase {
  transA: boolean; transB: boolean; M: number; N: number; K: number; batch: number;
  alpha: number; beta: number; aOff: number; bOff: number; cOff: number; padA: number; padB: number; padC: number;
  broadcastA: boolean; broadcastB: boolean;
}

function runGemm(n: NativeAddon, c: GemmCase, seed: number, what: string): void {
  const { transA, transB, M, N, K, batch } = c;
  const lda = (transA ? M : K) + c.padA, ldb = (transB ? K : N) + c.padB, ldc = N + c.padC;
  const rowsA = transA ? K : M, rowsB = transB ? N : K;
  const sA = c.broadcastA ? 0 : rowsA * lda, sB = c.broadcastB ? 0 : rowsB * ldb, sC = M * ldc;
  const A = rand32(c.aOff + (c.broadcastA ? 1 : batch) * rowsA * lda, seed);
  const B = rand32(c.bOff + (c.broadcastB ? 1 : batch) * rowsB * ldb, seed + 1);
  const C0 = rand32(c.cOff + batch * sC + 3, seed + 2);
  const args = (a: Float32Array | Float64Array, b: Float32Array | Float64Array, cc: Float32Array | Float64Array, alpha: number, beta: number) => ({
    transA, transB, M, N, K, alpha, A: a, aOffset: c.aOff, lda, strideA: sA, B: b, bOffset: c.bOff, ldb, strideB: sB,
    beta, C: cc, cOffset: c.cOff, ldc, strideC: sC, batch,
  });
  const ref = f64(C0);
  tsKernels.gemm(args(f64(A), f64(B), ref, c.alpha, c.beta));
  // Error bound per element: |alpha|·Σ|a||b| + |beta|·|c|.
  const bound = f64(C0).map(Math.abs);
  tsKernels.gemm(args(f64(A).map(Math.abs), f64(B).map(Math.abs), bound, Math.abs(c.alpha), Math.abs(c.beta)));
  const out = Float32Array.from(C0);
  n.gemm(transA, transB, M, N, K, c.alpha, A, c.aOff, lda, sA, B, c.bOff, ldb, sB, c.beta, out, c.cOff, ldc, sC, batch, null);
  close(out, ref, what, 2e-6, 1e-6, bound);
}

test('native gemm: every transpose, alpha/beta, offsets, padding, batch broadcast, odd sizes', { skip }, () => {
  eachIsa((n, isa) => {
    const r = rng(7);
    const pick = (xs: number[]) => xs[Math.floor(r() * xs.length)];
    let seed = 100;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (let rep = 0; rep < 6; rep++) {
          const c: GemmCase = {
            transA, transB,
            M: pick([1, 2, 5, 13, 14, 15, 17, 31, 33, 64, 97]),
            N: pick([1, 3, 7, 16, 17, 31, 32, 33, 48, 65, 100]),
            K: pick([1, 2, 9, 16, 31, 64, 257, 300]),
            batch: pick([1, 1, 2, 3]),
            alpha: pick([1, 1, 0.5, -2]), beta: pick([0, 0, 1, 0.25]),
            aOff: pick([0, 3]), bOff: pick([0, 5]), cOff: pick([0, 2]),
            padA: pick([0, 0, 3]), padB: pick([0, 0, 1]), padC: pick([0, 0, 4]),
            broadcastA: r() < 0.25, broadcastB: r() < 0.25,
          };
          runGemm(n, c, seed++, `gemm[${isa}] ${JSON.stringify(c)}`);
        }
      }
    }
    // Large enough to cross the K/M/N cache blocks and run on several threads.
    for (const [M, N, K, transA, transB] of [[300, 530, 600, false, false], [257, 129, 513, true, true], [1, 777, 300, false, true], [400, 3, 70, true, false], [301, 100, 1100, false, false]] as const) {
      runGemm(n, { transA, transB, M, N, K, batch: 1, alpha: 1, beta: 0, aOff: 1, bOff: 0, cOff: 0, padA: 0, padB: 0, padC: 0, broadcastA: false, broadcastB: false },
        seed++, `gemm[${isa}] ${M}x${N}x${K}`);
    }
    // Batched with broadcast B and several threads.
    runGemm(n, { transA: false, transB: true, M: 70, N: 50, K: 40, batch: 5, alpha: 1, beta: 0, aOff: 0, bOff: 0, cOff: 0, padA: 0, padB: 0, padC: 0, broadcastA: false, broadcastB: true },
      seed++, `gemm[${isa}] batched broadcast`);
  });
});

test('native gemm: K = 0 scales C by beta; strideC = 0 accumulates batches in order', { skip }, () => {
  eachIsa((n, isa) => {
    const C = Float32Array.from([1, 2, 3, 4]);
    n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0.5, C, 0, 2, 0, 1, null);
    assert.deepEqual([...C], [0.5, 1, 1.5, 2], `[${isa}] K = 0, beta 0.5`);
    n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0, C, 0, 2, 0, 1, null);
    assert.deepEqual([...C], [0, 0, 0, 0], `[${isa}] K = 0, beta 0`);
    // Three batches into the same C with beta = 1: C = Σ_b A_b B.
    const A = Float32Array.from([1, 2, 3, 4, 5, 6]); // three 1×2 rows
    const B = Float32Array.from([1, 10]); // 2×1
    const out = Float32Array.from([100]);
    n.gemm(false, false, 1, 1, 2, 1, A, 0, 2, 2, B, 0, 1, 0, 1, out, 0, 1, 0, 3, null);
    assert.equal(out[0], 100 + 21 + 43 + 65, `[${isa}] strideC 0`);
  });
});

test('native gemm: a bias on every row equals the product plus the bias (both paths, K blocks, batches, K = 0)', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 7100;
    // [M, N, K, transB, batch]: few columns (A read in place) and many (packed), one and several K blocks, a
    // batch over one shared weight (flattened into one product), and a row-split product sharing packed B.
    for (const [M, N, K, transB, batch] of [[37, 40, 30, true, 1], [64, 700, 1100, true, 1], [300, 130, 520, false, 1],
      [50, 33, 70, true, 3], [1000, 48, 64, true, 1]] as const) {
      const A = rand32(batch * M * K, seed++), B = rand32(K * N, seed++), bias = rand32(N, seed++, -2, 2);
      const plain = new Float32Array(batch * M * N), fused = new Float32Array(batch * M * N).fill(NaN);
      const ldb = transB ? K : N;
      n.gemm(false, transB, M, N, K, 1, A, 0, K, M * K, B, 0, ldb, 0, 0, plain, 0, N, M * N, batch, null);
      n.gemm(false, transB, M, N, K, 1, A, 0, K, M * K, B, 0, ldb, 0, 0, fused, 0, N, M * N, batch, bias);
      let worst = 0;
      for (let i = 0; i < fused.length; i++) worst = Math.max(worst, Math.abs(fused[i] - (plain[i] + bias[i % N])) / (1 + Math.abs(plain[i])));
      assert.ok(worst < 1e-5, `[${isa}] ${M}×${N}×${K} batch ${batch}: worst ${worst}`);
      // One K block: the tile starts from the bias and adds the product once, as product + bias rounds.
      if (K <= 64) for (let i = 0; i < fused.length; i++) assert.equal(fused[i], Math.fround(plain[i] + bias[i % N]), `[${isa}] ${M}×${N}×${K} element ${i}`);
    }
    const C = new Float32Array(4).fill(NaN);
    n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0, C, 0, 2, 0, 1, Float32Array.from([3, -1]));
    assert.deepEqual([...C], [3, -1, 3, -1], `[${isa}] K = 0 with a bias`);
    assert.throws(() => n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 1, C, 0, 2, 0, 1, Float32Array.from([3, -1])), /bias needs beta 0/);
    assert.throws(() => n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0, C, 0, 2, 0, 1, new Float32Array(1)), /holds 1 elements, needs 2/);
  });
});

test('native gemm: batch entries accumulating into one C (strideC 0) and a shared B over contiguous rows vs the reference', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 900;
    const run = (transA: boolean, transB: boolean, M: number, N: number, K: number, batch: number, alpha: number, beta: number,
      o: { shareA?: boolean; shareB?: boolean; padA?: number; padB?: number; strideC?: number; denseA?: boolean } = {}) => {
      const lda = (transA ? M : K) + (o.padA ?? 0), ldb = (transB ? K : N) + (o.padB ?? 0), ldc = N;
      const sA = o.shareA ? 0 : (transA ? K : M) * lda + (o.denseA ? 0 : 7), sB = o.shareB ? 0 : (transB ? N : K) * ldb + 3;
      const sC = o.strideC ?? 0;
      const A = rand32((o.shareA ? 1 : batch) * (sA || (transA ? K : M) * lda), seed++);
      const B = rand32((o.shareB ? 1 : batch) * (sB || (transB ? N : K) * ldb), seed++);
      const C0 = rand32(sC ? batch * sC : M * N, seed++);
      const what = `gemm[${isa}] ${JSON.stringify({ transA, transB, M, N, K, batch, alpha, beta, ...o })}`;
      const args = (a: Float32Array | Float64Array, b: Float32Array | Float64Array, c: Float32Array | Float64Array, al: number, be: number) => ({
        transA, transB, M, N, K, alpha: al, A: a, aOffset: 0, lda, strideA: sA, B: b, bOffset: 0, ldb, strideB: sB,
        beta: be, C: c, cOffset: 0, ldc, strideC: sC, batch,
      });
      const ref = f64(C0), bound = f64(C0).map(Math.abs);
      tsKernels.gemm(args(f64(A), f64(B), ref, alpha, beta));
      tsKernels.gemm(args(f64(A).map(Math.abs), f64(B).map(Math.abs), bound, Math.abs(alpha), Math.abs(beta)));
      const out = Float32Array.from(C0);
      n.gemm(transA, transB, M, N, K, alpha, A, 0, lda, sA, B, 0, ldb, sB, beta, out, 0, ldc, sC, batch, null);
      close(out, ref, what, 2e-6, 1e-6, bound);
    };
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        // a shared weight's gradient over 128 tokens-of-16 entries (the reduction crosses K blocks and entries)
        run(transA, transB, 64, 64, 16, 128, 1, 1);
        run(transA, transB, 17, 33, 5, 41, -0.5, 1, { padA: 2, padB: 1 });
        run(transA, transB, 13, 7, 1, 9, 1, 1, { shareA: true });
        run(transA, transB, 6, 20, 300, 3, 2, 1, { shareB: true });
        // beta ≠ 1 keeps the entries one after another (each scales what the previous left)
        run(transA, transB, 5, 9, 7, 4, 1, 0);
        run(transA, transB, 5, 9, 7, 4, 1, 0.5);
      }
      // one B over contiguous rows (a linear layer over [batch, tokens, features]): one product of batch·M rows
      run(false, transA, 16, 64, 64, 128, 1, 0, { shareB: true, strideC: 16 * 64, denseA: true });
      run(false, transA, 1, 37, 29, 50, 0.5, 1, { shareB: true, strideC: 37, denseA: true });
      run(false, transA, 3, 37, 29, 5, 1, 1, { shareB: true, strideC: 3 * 37 + 2 });
    }
  });
});

test('native gemm: bad extents throw instead of touching memory', { skip }, () => {
  const n = nativeAddon();
  const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, a, 1, 3, 0, b, 0, 2, 0, 0, c, 0, 2, 0, 1, null), /A is too short/);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, a, 0, 3, 0, b, 0, 2, 0, 0, c, 1, 2, 0, 1, null), /C is too short/);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, new Float64Array(6) as unknown as Float32Array, 0, 3, 0, b, 0, 2, 0, 0, c, 0, 2, 0, 1, null), /Float32Array/);
});

// ---- elementwise ----------------------------------------------------------------------------------------

interface View { data: Float32Array; offset: number; strides: number[] }

/** A strided view over `shape`: contiguous, offset, permuted, stepped or broadcast (stride 0) by kind. */
function makeView(shape: number[], kind: number, seed: number, lo = -3, hi = 3): View {
  const nd = shape.length;
  const r = rng(seed);
  const order = [...Array(nd).keys()];
  if (kind === 2 && nd > 1) order.reverse(); // transposed layout
  if (kind === 6 && nd > 1) [order[nd - 2], order[nd - 1]] = [order[nd - 1], order[nd - 2]]; // last two dims swapped
  const step = kind === 3 ? 2 : 1;
  const strides = new Array<number>(nd).fill(0);
  let acc = step;
  for (let k = nd - 1; k >= 0; k--) {
    const d = order[k];
    strides[d] = acc;
    acc *= shape[d];
  }
  if (kind === 4) for (let d = 0; d < nd; d++) if (r() < 0.5) strides[d] = 0; // broadcast some dims
  if (kind === 5 && nd > 0) strides[nd - 1] = 0; // broadcast along the inner dim
  const offset = kind === 0 ? 0 : 1 + Math.floor(r() * 5);
  const data = rand32(offset + acc + 2, seed + 17, lo, hi);
  return { data, offset, strides };
}

const to64 = (v: View) => ({ data: f64(v.data), offset: v.offset, strides: v.strides });
const SHAPES = [[1], [7], [37], [1000], [3, 17], [4, 1, 33], [2, 3, 5, 7], [5, 129], [2, 40000], [40, 33], [3, 32, 48]];

// Op codes in the order of native/common.h's UnaryOp enum.
const UNARY_NAMES = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'abs', 'sigmoid', 'tanh', 'silu', 'gelu', 'relu',
  'leaky_relu', 'square', 'reciprocal', 'sign', 'pow_scalar', 'clamp', 'add_scalar', 'mul_scalar', 'rsub_scalar', 'copy'];
const UNARY_CASES: [string, number, number, number, number][] = [
  // op, p, q, input lo, hi
  ['neg', 0, 0, -3, 3], ['exp', 0, 0, -20, 20], ['log', 0, 0, 0.01, 50], ['sqrt', 0, 0, 0, 9], ['rsqrt', 0, 0, 0.05, 9],
  ['sin', 0, 0, -6, 6], ['cos', 0, 0, -6, 6], ['abs', 0, 0, -3, 3], ['sigmoid', 0, 0, -30, 30], ['tanh', 0, 0, -5, 5],
  ['silu', 0, 0, -30, 30], ['gelu', 0, 0, -6, 6], ['relu', 0, 0, -3, 3], ['leaky_relu', 0.2, 0, -3, 3], ['square', 0, 0, -3, 3],
  ['reciprocal', 0, 0, 0.1, 3], ['sign', 0, 0, -3, 3], ['pow_scalar', 1.7, 0, 0, 4], ['pow_scalar', 2, 0, -3, 3],
  ['clamp', -0.5, 0.7, -3, 3], ['add_scalar', 0.25, 0, -3, 3], ['mul_scalar', -1.5, 0, -3, 3], ['rsub_scalar', 2, 0, -3, 3],
  ['copy', 0, 0, -3, 3],
];

test('native unary: every op on contiguous, offset, transposed, stepped and broadcast views', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 500;
    for (const [op, p, q, lo, hi] of UNARY_CASES) {
      for (const shape of SHAPES) {
        for (const kind of [0, 1, 2, 3, 4, 5, 6]) {
          const v = makeView(shape, kind, seed++, lo, hi);
          const size = shape.reduce((a, b) => a * b, 1);
          const ref = new Float64Array(size);
          tsKernels.unary(op as never, to64(v), ref, shape, p, q);
          const out = new Float32Array(size);
          const code = UNARY_NAMES.indexOf(op);
          n.unary(code, v.data, v.offset, v.strides, out, shape, p, q);
          close(out, ref, `unary[${isa}] ${op} shape [${shape}] kind ${kind}`, 4e-6, 1e-7);
        }
      }
    }
  });
});

test('native unary backward: every op', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 900;
    for (const [op, p, q, lo, hi] of UNARY_CASES) {
      for (const size of [1, 15, 16, 17, 1000, 70001]) {
        const x = rand32(size, seed++, lo, hi);
        const y = new Float32Array(size);
        tsKernels.unary(op as never, { data: x, offset: 0, strides: [1] }, y, [size], p, q);
        const g = rand32(size, seed++);
        const ref = new Float64Array(size);
        tsKernels.unaryBackward(op as never, f64(x), f64(y), f64(g), ref, p, q);
        const out = new Float32Array(size);
        const code = UNARY_NAMES.indexOf(op);
        n.unaryBackward(code, x, y, g, out, p, q);
        close(out, ref, `unaryBackward[${isa}] ${op} n=${size}`, 2e-5, 1e-6);
      }
    }
  });
});

test('native binary, where: broadcasting and strided operands, NaN semantics', { skip }, () => {
  const ops = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'gt', 'lt', 'ge', 'le', 'eq'];
  eachIsa((n, isa) => {
    let seed = 1500;
    for (const [code, op] of ops.entries()) {
      for (const shape of SHAPES) {
        for (const [ka, kb] of [[0, 0], [0, 4], [4, 0], [1, 5], [5, 1], [2, 0], [0, 3], [3, 2], [4, 4]]) {
          const lo = op === 'pow' ? 0.1 : -3;
          const a = makeView(shape, ka, seed++, lo, 3);
          const b = makeView(shape, kb, seed++, op === 'div' ? 0.5 : -3, 3);
          if (op === 'eq' || op === 'ge' || op === 'le') b.data.set(a.data.subarray(0, Math.min(a.data.length, b.data.length) >> 1));
          const size = shape.reduce((x, y) => x * y, 1);
          const ref = new Float64Array(size);
          tsKernels.binary(op as never, to64(a), to64(b), ref, shape);
          const out = new Float32Array(size);
          n.binary(code, a.data, a.offset, a.strides, b.data, b.offset, b.strides, out, shape);
          close(out, ref, `binary[${isa}] ${op} [${shape}] kinds ${ka}/${kb}`, 4e-6, 1e-7);
        }
      }
    }
    // NaN: maximum/minimum propagate NaN from either side; comparisons with NaN are 0.
    const a = Float32Array.from([NaN, 1, NaN, -0, 2]), b = Float32Array.from([1, NaN, NaN, 0, 2]);
    for (const [code, op] of ops.entries()) {
      if (op === 'pow') continue;
      const ref = new Float64Array(5), out = new Float32Array(5);
      tsKernels.binary(op as never, { data: f64(a), offset: 0, strides: [1] }, { data: f64(b), offset: 0, strides: [1] }, ref, [5]);
      n.binary(code, a, 0, [1], b, 0, [1], out, [5]);
      assert.deepEqual([...out].map(String), [...ref].map(String), `binary[${isa}] ${op} special values`);
    }
    // where(cond, a, b) with a broadcast condition.
    const shape = [3, 4, 33];
    const cond = makeView(shape, 4, 77, -1, 1);
    cond.data.forEach((v, i) => (cond.data[i] = v > 0 ? 1 : 0));
    const wa = makeView(shape, 2, 78), wb = makeView(shape, 5, 79);
    const ref = new Float64Array(3 * 4 * 33), out = new Float32Array(3 * 4 * 33);
    tsKernels.where(to64(cond), to64(wa), to64(wb), ref, shape);
    n.where(cond.data, cond.offset, cond.strides, wa.data, wa.offset, wa.strides, wb.data, wb.offset, wb.strides, out, shape);
    close(out, ref, `where[${isa}]`, 0, 0);
  });
});

test('native sum over the middle axis', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 2500;
    for (const [outer, len, inner] of [[1, 1, 1], [1, 1000, 1], [3, 17, 1], [1, 300000, 1], [5, 7, 3], [2, 100, 129], [1, 4000, 64],
      [64, 1024, 1], [4, 3, 100000], [1, 0, 5]]) {
      const x = rand32(outer * len * inner, seed++);
      const ref = new Float64Array(outer * inner);
      tsKernels.sum(f64(x), outer, len, inner, ref);
      const bound = new Float64Array(outer * inner);
      tsKernels.sum(f64(x).map(Math.abs), outer, len, inner, bound);
      const out = new Float32Array(outer * inner).fill(NaN);
      n.sum(x, outer, len, inner, out);
      close(out, ref, `sum[${isa}] ${outer}x${len}x${inner}`, 1e-6, 1e-7, bound);
    }
  });
});

// ---- convolution ----------------------------------------------------------------------------------------

/** Winograd F(4×4, 3×3)'s error, relative to Σ|x|·|w| of each output (the direct path: 2e-6). */
const WINOGRAD_RTOL = 1e-5;

interface ConvCase { N: number; C: number; H: number; W: number; O: number; kh: number; kw: number; sh: number; sw: number;
  pt: number; pb: number; pl: number; pr: number; bias: boolean }

function convCases(): ConvCase[] {
  const r = rng(31);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const cases: ConvCase[] = [
    { N: 2, C: 16, H: 8, W: 8, O: 33, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
    { N: 1, C: 8, H: 9, W: 11, O: 12, kh: 3, kw: 3, sh: 2, sw: 2, pt: 0, pb: 1, pl: 0, pr: 1, bias: true },
    { N: 3, C: 20, H: 6, W: 7, O: 9, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: false },
    { N: 1, C: 3, H: 40, W: 37, O: 5, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  ];
  for (let i = 0; i < 14; i++) {
    const kh = pick([1, 2, 3, 4]), kw = pick([1, 3, 2]);
    const c: ConvCase = {
      N: pick([1, 2, 3]), C: pick([1, 3, 5, 16]), H: pick([1, 5, 8, 13]), W: pick([1, 4, 9, 34]), O: pick([1, 4, 7, 33]),
      kh, kw, sh: pick([1, 1, 2, 3]), sw: pick([1, 2]), pt: pick([0, 1, 2]), pb: pick([0, 1]), pl: pick([0, 1, 2]), pr: pick([0, 2]),
      bias: r() < 0.5,
    };
    if (c.H + c.pt + c.pb >= kh && c.W + c.pl + c.pr >= kw) cases.push(c);
  }
  return cases;
}

/** The kernels' geometry of a case (output size from its padding and stride). */
function convGeom(c: ConvCase) {
  const { N, C, H, W, O, kh, kw, sh, sw, pt, pl } = c;
  const OH = Math.floor((H + pt + c.pb - kh) / sh) + 1, OW = Math.floor((W + pl + c.pr - kw) / sw) + 1;
  return { N, C, H, W, O, kh, kw, sh, sw, padTop: pt, padLeft: pl, OH, OW };
}

/** Forward, input and weight (+ bias) gradients of one case against the float64 reference; inputs from seeds `seed`…, returns the next free seed. */
function checkConv(n: NativeAddon, c: ConvCase, seed: number, what: string, rtol = 2e-6): number {
  const { N, C, H, W, O, kh, kw } = c;
  const g = convGeom(c), { OH, OW } = g;
  const x = rand32(N * C * H * W, seed++), w = rand32(O * C * kh * kw, seed++), b = c.bias ? rand32(O, seed++) : null;
  const gy = rand32(N * O * OH * OW, seed++);
  const abs = (a: Float32Array) => f64(a).map(Math.abs);
  // forward
  const ref = new Float64Array(N * O * OH * OW), bound = new Float64Array(N * O * OH * OW);
  tsKernels.conv2dForward(g, f64(x), f64(w), b && f64(b), ref);
  tsKernels.conv2dForward(g, abs(x), abs(w), b && abs(b), bound);
  const out = new Float32Array(N * O * OH * OW).fill(NaN);
  n.conv2dForward(g, x, w, b, out);
  close(out, ref, `${what} forward`, rtol, 1e-6, bound);
  // backward input
  const gxRef = new Float64Array(N * C * H * W), gxBound = new Float64Array(N * C * H * W);
  tsKernels.conv2dBackwardInput(g, f64(gy), f64(w), gxRef);
  tsKernels.conv2dBackwardInput(g, abs(gy), abs(w), gxBound);
  const gx = new Float32Array(N * C * H * W).fill(NaN);
  n.conv2dBackwardInput(g, gy, w, gx);
  close(gx, gxRef, `${what} backward input`, rtol, 1e-6, gxBound);
  // backward weight (+ bias)
  const gwRef = new Float64Array(O * C * kh * kw), gwBound = new Float64Array(O * C * kh * kw);
  const gbRef = new Float64Array(O), gbBound = new Float64Array(O);
  tsKernels.conv2dBackwardWeight(g, f64(x), f64(gy), gwRef, gbRef);
  tsKernels.conv2dBackwardWeight(g, abs(x), abs(gy), gwBound, gbBound);
  const gw = new Float32Array(O * C * kh * kw).fill(NaN), gb = new Float32Array(O).fill(NaN);
  n.conv2dBackwardWeight(g, x, gy, gw, c.bias ? gb : null);
  close(gw, gwRef, `${what} backward weight`, 2e-6, 1e-6, gwBound);
  if (c.bias) close(gb, gbRef, `${what} backward bias`, 2e-6, 1e-6, gbBound);
  return seed;
}

test('native conv2d forward / backward input / backward weight vs the reference', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 3000;
    for (const c of convCases()) {
      seed = checkConv(n, c, seed, `conv[${isa}] ${JSON.stringify(c)}`);
    }
  });
});

// Stride-1 3×3 convolutions with 64 tiles (4×4) or more and enough channels (native/winograd.inc; AVX2 and AVX-512
// from 16) go through Winograd F(4×4, 3×3): rows of tiles that are whole vector chunks (the transposing loads and
// stores), partial tiles at the edges, unpadded and asymmetric padding, many small images, channel counts off the
// vector width.
const winogradCases: ConvCase[] = [
  { N: 1, C: 64, H: 64, W: 64, O: 64, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 3, C: 128, H: 13, W: 21, O: 130, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: false },
  { N: 1, C: 129, H: 34, W: 34, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: true },
  { N: 1, C: 128, H: 30, W: 30, O: 129, kh: 3, kw: 3, sh: 1, sw: 1, pt: 2, pb: 0, pl: 0, pr: 2, bias: true },
  { N: 16, C: 128, H: 8, W: 8, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  // rows of 4 and 8 tiles (one vector group spans 4 or 2 tile rows), with a partial last group (68 and 72 tiles)
  { N: 1, C: 128, H: 68, W: 16, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 1, C: 128, H: 36, W: 32, O: 64, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: false },
  // more channels than one K block of the GEMM (192): the fused tasks' products accumulate over two blocks
  { N: 1, C: 200, H: 32, W: 30, O: 67, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
];
// What the AVX2 and AVX-512 builds send through Winograd and the portable one does not: narrow layers of a batch (an
// autoencoder's training step: 16–63 channels, rows of 3 and 2 tiles, a partial tile column; 108 and 128 tiles) and
// 16–63 tiles (a UNet's 16×16 level: two K blocks, output channels off the task rows and micro-panel rows; 20 tiles
// with partial ones).
const vectorWinogradCases: ConvCase[] = [
  { N: 9, C: 24, H: 16, W: 11, O: 20, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 32, C: 16, H: 8, W: 8, O: 33, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: false },
  { N: 1, C: 200, H: 16, W: 16, O: 119, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 1, C: 40, H: 19, W: 13, O: 17, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
];

test('native conv2d through Winograd F(4×4, 3×3) vs the reference (AVX2, AVX-512: the weight gradient too), and not the direct path\'s numbers', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 4000;
    for (const c of isa === 'avx2' || isa === 'avx512' ? [...winogradCases, ...vectorWinogradCases] : winogradCases) {
      const what = `winograd conv[${isa}] ${JSON.stringify(c)}`;
      // Both ways through it: tasks that take a block of tiles through all three steps, and tasks over blocks of
      // output channels that transform their own kernels.
      for (const fused of ['1', '0']) {
        process.env.LDM_WG_FUSED = fused;
        seed = checkConv(n, c, seed, `${what} LDM_WG_FUSED=${fused}`, WINOGRAD_RTOL);
      }
      delete process.env.LDM_WG_FUSED;
      // The same forward with LDM_WINOGRAD=0 (the direct GEMM) rounds differently: the Winograd path ran.
      const g = convGeom(c), { OH, OW } = g;
      const x = rand32(c.N * c.C * c.H * c.W, 1), w = rand32(c.O * c.C * 9, 2);
      const [wg, direct] = ['1', '0'].map((mode) => {
        process.env.LDM_WINOGRAD = mode;
        const out = new Float32Array(c.N * c.O * OH * OW);
        n.conv2dForward(g, x, w, null, out);
        return out;
      });
      // AVX2 and AVX-512 take the weight gradient through Winograd too.
      const gy = rand32(c.N * c.O * OH * OW, 3);
      const [gwWg, gwDirect] = ['1', '0'].map((mode) => {
        process.env.LDM_WINOGRAD = mode;
        const gw = new Float32Array(c.O * c.C * 9);
        n.conv2dBackwardWeight(g, x, gy, gw, null);
        return gw;
      });
      delete process.env.LDM_WINOGRAD;
      assert.ok(wg.some((v, i) => v !== direct[i]), `${what}: Winograd and direct outputs are identical`);
      // (from 64 tiles, with C + O ≤ 320)
      const tiles = c.N * Math.ceil(OH / 4) * Math.ceil(OW / 4);
      if ((isa === 'avx2' || isa === 'avx512') && tiles >= 64 && c.C + c.O <= 320) assert.ok(gwWg.some((v, i) => v !== gwDirect[i]), `${what}: Winograd and direct weight gradients are identical`);
    }
  });
});

// AVX2 and AVX-512 take small images that Winograd F(4×4) gets too few tiles of (8×8: 4) through F(2×2, 3×3)
// (native/winograd2.inc) from 128 channels: output channels off the micro-panel and task rows, two K blocks, partial tiles at odd sizes,
// no and asymmetric padding, a batch; the input gradient takes it with the channel counts swapped.
const winograd2Cases: ConvCase[] = [
  { N: 1, C: 128, H: 8, W: 8, O: 130, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 2, C: 200, H: 8, W: 8, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: false },
  { N: 1, C: 128, H: 7, W: 9, O: 140, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 3, C: 129, H: 10, W: 10, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: true },
  { N: 1, C: 136, H: 8, W: 8, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, pt: 2, pb: 0, pl: 0, pr: 2, bias: true },
];

test('native conv2d through Winograd F(2×2, 3×3) on small images (AVX2, AVX-512) vs the reference, and not the direct path\'s numbers', { skip }, () => {
  eachIsa((n, isa) => {
    if (isa !== 'avx2' && isa !== 'avx512') return;
    let seed = 4500;
    for (const c of winograd2Cases) {
      const what = `winograd F(2×2) conv[${isa}] ${JSON.stringify(c)}`;
      seed = checkConv(n, c, seed, what, WINOGRAD_RTOL);
      const g = convGeom(c), { OH, OW } = g;
      const x = rand32(c.N * c.C * c.H * c.W, 1), w = rand32(c.O * c.C * 9, 2), gy = rand32(c.N * c.O * OH * OW, 3);
      const [wg, direct] = ['1', '0'].map((mode) => {
        process.env.LDM_WG2 = mode;
        const out = new Float32Array(c.N * c.O * OH * OW), gx = new Float32Array(c.N * c.C * c.H * c.W);
        n.conv2dForward(g, x, w, null, out);
        n.conv2dBackwardInput(g, gy, w, gx);
        return { out, gx };
      });
      delete process.env.LDM_WG2;
      assert.ok(wg.out.some((v, i) => v !== direct.out[i]), `${what}: F(2×2) and direct outputs are identical`);
      assert.ok(wg.gx.some((v, i) => v !== direct.gx[i]), `${what}: F(2×2) and direct input gradients are identical`);
    }
  });
});

// An image's output does not depend on the batch it is in (a batch of samples must give what each seed gives
// alone): the paths a batch may take that one image does not (several images per GEMM, the shifted GEMM,
// Winograd from 16 tiles per image) round like the single image's path, bias included.
test('native conv2d: the first image of a batch comes out bit for bit as it does alone', { skip }, () => {
  eachIsa((n, isa) => {
    for (const [C, H, O] of [[64, 8, 64], [128, 8, 128], [32, 8, 32], [64, 16, 64], [128, 16, 128], [16, 16, 16], [24, 16, 40], [32, 32, 32], [8, 8, 4]]) {
      const g = (N: number) => ({ N, C, H, W: H, O, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, OH: H, OW: H });
      const x = rand32(3 * C * H * H, C + H), w = rand32(O * C * 9, O), bias = rand32(O, 7);
      const one = new Float32Array(O * H * H), three = new Float32Array(3 * O * H * H);
      n.conv2dForward(g(1), x.subarray(0, C * H * H), w, bias, one);
      n.conv2dForward(g(3), x, w, bias, three);
      const differ = one.filter((v, i) => v !== three[i]).length;
      assert.equal(differ, 0, `conv[${isa}] ${C}→${O} 3×3 at ${H}×${H}: ${differ} of ${one.length} outputs differ between a batch of 1 and of 3`);
    }
  });
});

// Small outputs (P = OH·OW below 512) run several images through one GEMM: the images of a group lie side by
// side in its columns (forward, input gradient) or its reduction (weight gradient). These batches make several
// groups and a partial last one, with panels that straddle images (P not a multiple of the panel width).
const smallSpatialCases: ConvCase[] = [
  // the MNIST LDM's latents: 3×3 at 8×8 (P 64) and 4×4 (P 16), the 8×8 → 4×4 downsampling, 1×1 at 4×4
  { N: 19, C: 5, H: 8, W: 8, O: 7, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 70, C: 6, H: 4, W: 4, O: 9, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 37, C: 6, H: 8, W: 8, O: 5, kh: 3, kw: 3, sh: 2, sw: 2, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 40, C: 9, H: 4, W: 4, O: 10, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: true },
  // odd sizes: P 15 and 35 (panels straddle images), asymmetric padding, unequal strides, 1×1 outputs
  { N: 41, C: 3, H: 3, W: 5, O: 13, kh: 2, kw: 3, sh: 1, sw: 1, pt: 1, pb: 0, pl: 1, pr: 1, bias: false },
  { N: 23, C: 4, H: 7, W: 9, O: 6, kh: 3, kw: 2, sh: 1, sw: 2, pt: 0, pb: 1, pl: 2, pr: 0, bias: true },
  { N: 33, C: 7, H: 5, W: 7, O: 3, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: false },
  { N: 530, C: 3, H: 1, W: 1, O: 4, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 9, C: 2, H: 16, W: 16, O: 3, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
];

/** body(t) with the pool at 1 thread and at all of them (restored after). */
function eachThreadCount(body: (t: number) => void): void {
  const threads = nativeAddon().info().threads;
  try {
    for (const t of [...new Set([1, threads])]) {
      nativeAddon().setThreads(t);
      body(t);
    }
  } finally {
    nativeAddon().setThreads(threads);
  }
}

test('native conv2d on batches of small images (several images per GEMM) vs the reference, 1 and all threads', { skip }, () => {
  eachThreadCount((t) => eachIsa((n, isa) => {
    let seed = 3500;
    for (const c of smallSpatialCases) {
      seed = checkConv(n, c, seed, `conv[${isa}, ${t} thread(s)] ${JSON.stringify(c)}`);
    }
  }));
});

// Stride-1 convolutions with few output channels read their column matrix in place from a copy of the images
// that shares its zero padding between rows and images (native/conv_shifted.inc). Forced on here
// (LDM_SHIFTED=1) for every stride-1 case: asymmetric and zero padding, padding wider than the other side,
// kernels of 2–4 taps, images of one pixel, one row or one column, panels that straddle rows and images,
// 1 and all threads (tasks split the columns).
const shiftedCases: ConvCase[] = [
  { N: 32, C: 32, H: 32, W: 32, O: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 5, C: 7, H: 8, W: 8, O: 13, kh: 4, kw: 4, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 3, C: 5, H: 7, W: 9, O: 3, kh: 4, kw: 4, sh: 1, sw: 1, pt: 2, pb: 1, pl: 2, pr: 1, bias: false },
  { N: 4, C: 3, H: 6, W: 11, O: 20, kh: 2, kw: 3, sh: 1, sw: 1, pt: 2, pb: 0, pl: 0, pr: 2, bias: true },
  { N: 2, C: 4, H: 9, W: 10, O: 1, kh: 3, kw: 3, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, bias: true },
  { N: 7, C: 2, H: 1, W: 17, O: 5, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
  { N: 6, C: 3, H: 13, W: 1, O: 2, kh: 3, kw: 1, sh: 1, sw: 1, pt: 1, pb: 1, pl: 0, pr: 0, bias: false },
  { N: 1, C: 1, H: 40, W: 37, O: 7, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
];

test('native conv2d through the shifted GEMM vs the reference, 1 and all threads; it runs for few output channels', { skip }, () => {
  const stride1 = [...convCases(), ...smallSpatialCases, ...shiftedCases].filter((c) => c.sh === 1 && c.sw === 1 && c.kh * c.kw > 1);
  try {
    process.env.LDM_SHIFTED = '1';
    let seed = 5000;
    eachThreadCount((t) => eachIsa((n, isa) => {
      for (const c of stride1) seed = checkConv(n, c, seed, `shifted conv[${isa}, ${t} thread(s)] ${JSON.stringify(c)}`);
    }));
    // Images whose layout would pass the size cap (4M floats) are convolved in bands of rows.
    seed = checkConv(nativeAddon(), { N: 1, C: 64, H: 262, W: 250, O: 3, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1, bias: true },
      seed, 'shifted conv in bands of rows');
    // Both GEMMs start from a bias-filled tile and add the products in the same order, so which one runs
    // (forced, the default rule, or LDM_SHIFTED=0) never changes a result.
    const c = shiftedCases[0];
    const g = { N: c.N, C: c.C, H: c.H, W: c.W, O: c.O, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, OH: c.H, OW: c.W };
    const x = rand32(c.N * c.C * c.H * c.W, 1), w = rand32(c.O * c.C * 9, 2), b = rand32(c.O, 3);
    eachIsa((n, isa) => {
      const [forced, auto, packed] = ['1', '', '0'].map((mode) => {
        if (mode) process.env.LDM_SHIFTED = mode;
        else delete process.env.LDM_SHIFTED;
        const out = new Float32Array(c.N * c.O * c.H * c.W);
        n.conv2dForward(g, x, w, b, out);
        return out;
      });
      assert.deepEqual(auto, forced, `${isa}: the default rule rounds as the forced shifted GEMM`);
      assert.deepEqual(packed, forced, `${isa}: LDM_SHIFTED=0 rounds as the shifted GEMM`);
    });
  } finally {
    delete process.env.LDM_SHIFTED;
  }
});


// ---- normalisation and softmax ----------------------------------------------------------------------------

test('native group norm (± SiLU, ± affine) forward and backward', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 4000;
    for (const [N, C, HW, G] of [[1, 4, 1, 2], [2, 6, 17, 3], [3, 32, 64, 8], [1, 8, 1000, 1], [2, 5, 33, 5], [4, 128, 256, 32]]) {
      for (const silu of [false, true]) {
        for (const affine of [false, true]) {
          const what = `groupNorm[${isa}] N${N} C${C} HW${HW} G${G} silu=${silu} affine=${affine}`;
          const x = rand32(N * C * HW, seed++, -2, 3);
          const gamma = affine ? rand32(C, seed++, 0.5, 1.5) : null, beta = affine ? rand32(C, seed++) : null;
          const eps = 1e-5;
          const ref = new Float64Array(N * C * HW), rm = new Float64Array(N * G), rr = new Float64Array(N * G);
          tsKernels.groupNormForward(f64(x), N, C, HW, G, eps, gamma && f64(gamma), beta && f64(beta), silu, ref, rm, rr);
          const out = new Float32Array(N * C * HW), mean = new Float32Array(N * G), rstd = new Float32Array(N * G);
          n.groupNormForward(x, N, C, HW, G, eps, gamma, beta, silu, out, mean, rstd);
          close(mean, rm, `${what} mean`, 1e-5, 1e-6);
          close(rstd, rr, `${what} rstd`, 1e-5, 1e-6);
          close(out, ref, `${what} out`, 2e-5, 2e-5);
          const gy = rand32(N * C * HW, seed++);
          const gxr = new Float64Array(N * C * HW), ggr = new Float64Array(C), gbr = new Float64Array(C);
          tsKernels.groupNormBackward(f64(x), f64(gy), N, C, HW, G, gamma && f64(gamma), beta && f64(beta), silu, rm, rr, gxr, ggr, gbr);
          const gx = new Float32Array(N * C * HW), gg = new Float32Array(C), gb = new Float32Array(C);
          n.groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, gg, gb);
          const scale = Math.sqrt((C / G) * HW);
          close(gx, gxr, `${what} gx`, 1e-4, 1e-5 * scale);
          close(gg, ggr, `${what} ggamma`, 1e-4, 1e-5 * Math.sqrt(N * HW));
          close(gb, gbr, `${what} gbeta`, 1e-4, 1e-5 * Math.sqrt(N * HW));
          n.groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, null, null); // optional outputs
          close(gx, gxr, `${what} gx (no affine grads)`, 1e-4, 1e-5 * scale);
        }
      }
    }
  });
});

test('native layer norm forward and backward', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 4500;
    for (const [rows, cols] of [[1, 1], [3, 7], [5, 64], [17, 33], [300, 320], [2, 1000], [1000, 16]]) {
      for (const affine of [false, true]) {
        const what = `layerNorm[${isa}] ${rows}x${cols} affine=${affine}`;
        const x = rand32(rows * cols, seed++, -2, 3);
        const gamma = affine ? rand32(cols, seed++, 0.5, 1.5) : null, beta = affine ? rand32(cols, seed++) : null;
        const ref = new Float64Array(rows * cols), rm = new Float64Array(rows), rr = new Float64Array(rows);
        tsKernels.layerNormForward(f64(x), rows, cols, 1e-5, gamma && f64(gamma), beta && f64(beta), ref, rm, rr);
        const out = new Float32Array(rows * cols), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        n.layerNormForward(x, rows, cols, 1e-5, gamma, beta, out, mean, rstd);
        close(mean, rm, `${what} mean`, 1e-5, 1e-6);
        close(rstd, rr, `${what} rstd`, 1e-5, 1e-6);
        close(out, ref, `${what} out`, 2e-5, 2e-5);
        const gy = rand32(rows * cols, seed++);
        const gxr = new Float64Array(rows * cols), ggr = new Float64Array(cols), gbr = new Float64Array(cols);
        tsKernels.layerNormBackward(f64(x), f64(gy), rows, cols, gamma && f64(gamma), rm, rr, gxr, ggr, gbr);
        const gx = new Float32Array(rows * cols), gg = new Float32Array(cols), gb = new Float32Array(cols);
        n.layerNormBackward(x, gy, rows, cols, gamma, mean, rstd, gx, gg, gb);
        close(gx, gxr, `${what} gx`, 1e-4, 1e-5 * Math.sqrt(cols));
        close(gg, ggr, `${what} ggamma`, 1e-4, 1e-5 * Math.sqrt(rows));
        close(gb, gbr, `${what} gbeta`, 1e-4, 1e-5 * Math.sqrt(rows));
      }
    }
  });
});

test('native softmax / log-softmax forward and backward', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 5000;
    for (const [rows, cols] of [[1, 1], [3, 7], [5, 16], [17, 33], [64, 1024], [2, 5000], [1000, 3]]) {
      for (const log of [false, true]) {
        const what = `${log ? 'logSoftmax' : 'softmax'}[${isa}] ${rows}x${cols}`;
        const x = rand32(rows * cols, seed++, -8, 8);
        if (cols > 2) x[1] = -Infinity; // masked entry
        const ref = new Float64Array(rows * cols);
        (log ? tsKernels.logSoftmaxForward : tsKernels.softmaxForward)(f64(x), rows, cols, ref);
        const out = new Float32Array(rows * cols);
        n.softmaxForward(x, rows, cols, out, log);
        close(out, ref, `${what} forward`, 1e-5, log ? 1e-6 : 1e-7); // log: float32 exp/log round-off is absolute
        const gy = rand32(rows * cols, seed++);
        const y = out; // the forward output (softmax or log-softmax) is what backward takes
        const gxr = new Float64Array(rows * cols);
        (log ? tsKernels.logSoftmaxBackward : tsKernels.softmaxBackward)(f64(y), f64(gy), rows, cols, gxr);
        const gx = new Float32Array(rows * cols);
        n.softmaxBackward(y, gy, rows, cols, gx, log);
        close(gx, gxr, `${what} backward`, 1e-5, 1e-6 * Math.sqrt(cols));
      }
    }
  });
});

// ---- attention --------------------------------------------------------------------------------------------

test('native flash attention forward and backward (ragged blocks, D ≠ Dv, several batches, interleaved heads)', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 6000;
    // [B entries, Lq, Lk, D, Dv, H heads interleaved in the rows (B = batch · H), pool threads (0: as is)]; with
    // more threads than entries the backward splits key blocks into groups whose gQ parts are summed at the end.
    const threadsBefore = n.info().threads;
    for (const [B, Lq, Lk, D, Dv, H, th] of [[1, 1, 1, 1, 1, 1, 0], [2, 5, 7, 8, 16, 1, 0], [1, 113, 130, 33, 40, 1, 0], [3, 130, 129, 64, 64, 1, 0],
      [1, 300, 77, 40, 40, 1, 0], [2, 64, 300, 16, 8, 1, 0], [6, 50, 140, 40, 24, 3, 0], [8, 64, 64, 8, 8, 8, 0], [4, 20, 3, 5, 7, 2, 0],
      [2, 40, 300, 16, 12, 2, 4]]) {
      if (th) n.setThreads(th);
      const what = `attention[${isa}] B${B} Lq${Lq} Lk${Lk} D${D} Dv${Dv} H${H}${th ? ` threads ${th}` : ''}`;
      const q = rand32(B * Lq * D, seed++, -1.5, 1.5), k = rand32(B * Lk * D, seed++, -1.5, 1.5), v = rand32(B * Lk * Dv, seed++);
      const scale = 1 / Math.sqrt(D);
      const outR = new Float64Array(B * Lq * Dv), lseR = new Float64Array(B * Lq);
      tsKernels.attentionForward(f64(q), f64(k), f64(v), B, Lq, Lk, D, Dv, scale, outR, lseR, H);
      const out = new Float32Array(B * Lq * Dv).fill(NaN), lse = new Float32Array(B * Lq).fill(NaN);
      n.attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H);
      close(out, outR, `${what} out`, 1e-5, 1e-5);
      close(lse, lseR, `${what} lse`, 1e-5, 1e-5);
      const gout = rand32(B * Lq * Dv, seed++);
      const gqR = new Float64Array(B * Lq * D), gkR = new Float64Array(B * Lk * D), gvR = new Float64Array(B * Lk * Dv);
      tsKernels.attentionBackward(f64(q), f64(k), f64(v), outR, f64(gout), lseR, B, Lq, Lk, D, Dv, scale, gqR, gkR, gvR, H);
      const gq = new Float32Array(B * Lq * D).fill(NaN), gk = new Float32Array(B * Lk * D).fill(NaN), gv = new Float32Array(B * Lk * Dv).fill(NaN);
      n.attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H);
      close(gq, gqR, `${what} gq`, 1e-4, 1e-5);
      close(gk, gkR, `${what} gk`, 1e-4, 1e-5 * Math.sqrt(Lq));
      close(gv, gvR, `${what} gv`, 1e-4, 1e-5 * Math.sqrt(Lq));
      n.setThreads(threadsBefore);
    }
  });
});

test('native group / layer norm stay accurate for inputs with a large mean', { skip }, () => {
  eachIsa((n, isa) => {
    const N = 2, C = 8, HW = 256, G = 4;
    const x = rand32(N * C * HW, 7000, 999, 1001); // 1000 ± 1
    const ref = new Float64Array(N * C * HW), rm = new Float64Array(N * G), rr = new Float64Array(N * G);
    tsKernels.groupNormForward(f64(x), N, C, HW, G, 1e-6, null, null, false, ref, rm, rr);
    const out = new Float32Array(N * C * HW), mean = new Float32Array(N * G), rstd = new Float32Array(N * G);
    n.groupNormForward(x, N, C, HW, G, 1e-6, null, null, false, out, mean, rstd);
    close(rstd, rr, `groupNorm[${isa}] rstd, mean 1000`, 1e-5, 0);
    close(out, ref, `groupNorm[${isa}] out, mean 1000`, 0, 3e-4); // float32 inputs near 1000 carry ±3e-5 each
    const lref = new Float64Array(N * C * HW), lm = new Float64Array(N * C), lr = new Float64Array(N * C);
    tsKernels.layerNormForward(f64(x), N * C, HW, 1e-6, null, null, lref, lm, lr);
    const lout = new Float32Array(N * C * HW), lmean = new Float32Array(N * C), lrstd = new Float32Array(N * C);
    n.layerNormForward(x, N * C, HW, 1e-6, null, null, lout, lmean, lrstd);
    close(lrstd, lr, `layerNorm[${isa}] rstd, mean 1000`, 1e-5, 0);
    close(lout, lref, `layerNorm[${isa}] out, mean 1000`, 0, 3e-4);
  });
});

// ---- resampling -------------------------------------------------------------------------------------------

test('native nearest upsampling and average pooling, forward and backward (odd sizes, every factor)', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 8000;
    for (const [NC, H, W, s] of [[1, 1, 1, 2], [3, 5, 7, 2], [2, 4, 17, 2], [130, 8, 8, 2], [1, 3, 33, 3], [4, 6, 5, 1], [2, 16, 40, 2], [1, 2, 3, 4]]) {
      const what = `upsample[${isa}] ${NC}x${H}x${W} s${s}`;
      const x = rand32(NC * H * W, seed++);
      const ref = new Float64Array(NC * H * W * s * s), out = new Float32Array(ref.length).fill(NaN);
      tsKernels.upsampleNearestForward(f64(x), NC, H, W, s, ref);
      n.upsampleNearestForward(x, NC, H, W, s, out);
      close(out, ref, `${what} forward`, 0, 0);
      const gy = rand32(ref.length, seed++);
      const gref = new Float64Array(NC * H * W), gx = new Float32Array(gref.length).fill(NaN);
      tsKernels.upsampleNearestBackward(f64(gy), NC, H, W, s, gref);
      n.upsampleNearestBackward(gy, NC, H, W, s, gx);
      close(gx, gref, `${what} backward`, 1e-6, 1e-6);
    }
    for (const [NC, H, W, k, st] of [[1, 2, 2, 2, 2], [3, 7, 9, 2, 2], [130, 8, 8, 2, 2], [2, 9, 10, 3, 3], [2, 9, 11, 3, 2], [1, 8, 9, 2, 3],
      [4, 5, 5, 1, 1], [2, 33, 35, 2, 2], [1, 6, 6, 6, 6]]) {
      const OH = Math.floor((H - k) / st) + 1, OW = Math.floor((W - k) / st) + 1;
      const what = `avgPool[${isa}] ${NC}x${H}x${W} k${k} s${st}`;
      const x = rand32(NC * H * W, seed++);
      const ref = new Float64Array(NC * OH * OW), out = new Float32Array(ref.length).fill(NaN);
      tsKernels.avgPool2dForward(f64(x), NC, H, W, k, st, OH, OW, ref);
      n.avgPool2dForward(x, NC, H, W, k, st, OH, OW, out);
      close(out, ref, `${what} forward`, 1e-6, 1e-6);
      const gy = rand32(ref.length, seed++);
      const gref = new Float64Array(NC * H * W), gx = new Float32Array(gref.length).fill(NaN);
      tsKernels.avgPool2dBackward(f64(gy), NC, H, W, k, st, OH, OW, gref);
      n.avgPool2dBackward(gy, NC, H, W, k, st, OH, OW, gx);
      close(gx, gref, `${what} backward`, 1e-6, 1e-6);
    }
  });
});

test('native bilinear interpolation (align_corners = false), forward and backward, up and down', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 8500;
    // [NC, H, W, OH, OW, scale factor or null (size given)]
    for (const [NC, H, W, OH, OW, f] of [[2, 4, 5, 8, 10, null], [3, 7, 9, 3, 4, null], [1, 5, 5, 7, 7, 1.5], [70, 16, 16, 32, 32, null],
      [2, 1, 6, 3, 2, null], [1, 9, 13, 9, 13, null], [2, 6, 6, 4, 4, 0.75]] as [number, number, number, number, number, number | null][]) {
      const sh = f === null ? H / OH : 1 / f, sw = f === null ? W / OW : 1 / f;
      const what = `bilinear[${isa}] ${NC}x${H}x${W} → ${OH}x${OW}${f === null ? '' : ` factor ${f}`}`;
      const x = rand32(NC * H * W, seed++);
      const ref = new Float64Array(NC * OH * OW), out = new Float32Array(ref.length).fill(NaN);
      tsKernels.bilinearForward(f64(x), NC, H, W, OH, OW, sh, sw, ref);
      n.bilinearForward(x, NC, H, W, OH, OW, sh, sw, out);
      close(out, ref, `${what} forward`, 1e-6, 1e-6);
      const gy = rand32(ref.length, seed++);
      const gref = new Float64Array(NC * H * W), gx = new Float32Array(gref.length).fill(NaN);
      tsKernels.bilinearBackward(f64(gy), NC, H, W, OH, OW, sh, sw, gref);
      n.bilinearBackward(gy, NC, H, W, OH, OW, sh, sw, gx);
      close(gx, gref, `${what} backward`, 1e-5, 1e-6);
    }
  });
});

test('native resampling refuses outputs that do not fit', { skip }, () => {
  const n = nativeAddon();
  assert.throws(() => n.upsampleNearestForward(new Float32Array(4), 1, 2, 2, 2, new Float32Array(15)), RangeError);
  assert.throws(() => n.avgPool2dForward(new Float32Array(16), 1, 4, 4, 2, 2, 3, 2, new Float32Array(6)), RangeError);
  assert.throws(() => n.avgPool2dBackward(new Float32Array(4), 1, 4, 4, 2, 2, 2, 2, new Float32Array(15)), RangeError);
  assert.throws(() => n.bilinearForward(new Float32Array(4), 1, 2, 2, 4, 4, 0.5, 0.5, new Float32Array(15)), RangeError);
});

// ---- max / min with index ---------------------------------------------------------------------------------

test('native max / min with first index: ties, NaN, ±0, ±Infinity, rows and columns', { skip }, () => {
  eachIsa((n, isa) => {
    let seed = 9000;
    const r = rng(91);
    for (const [outer, len, inner] of [[1, 1, 1], [3, 7, 1], [2, 15, 1], [2, 16, 1], [5, 17, 1], [4, 33, 1], [3, 1000, 1], [600, 64, 1],
      [2, 8192, 1], [2, 5, 3], [3, 40, 17], [2, 9, 16], [1, 3, 100], [64, 20, 40]]) {
      for (const kind of ['random', 'ties', 'nan', 'special']) {
        const x = rand32(outer * len * inner, seed++);
        if (kind === 'ties') x.forEach((v, i) => (x[i] = Math.round(v * 2))); // values in {-2, …, 2}: many equal extremes
        if (kind === 'nan') for (let k = 0; k < Math.max(1, (x.length / 50) | 0); k++) x[Math.floor(r() * x.length)] = NaN;
        if (kind === 'special') {
          x.forEach((v, i) => (x[i] = [0, -0, Infinity, -Infinity, 1, -1][Math.floor(r() * 6)]));
        }
        for (const isMax of [true, false]) {
          const what = `extreme[${isa}] ${outer}x${len}x${inner} ${kind} ${isMax ? 'max' : 'min'}`;
          const ref = new Float32Array(outer * inner), refIdx = new Int32Array(outer * inner);
          tsKernels.extreme(x, outer, len, inner, ref, refIdx, isMax);
          const out = new Float32Array(outer * inner).fill(7), idx = new Int32Array(outer * inner).fill(-1);
          n.extreme(x, outer, len, inner, out, idx, isMax);
          assert.deepEqual([...idx], [...refIdx], `${what}: indices`);
          for (let i = 0; i < out.length; i++) assert.ok(Object.is(out[i], ref[i]), `${what}: value ${i}: ${out[i]} vs ${ref[i]}`);
        }
      }
    }
    assert.throws(() => n.extreme(new Float32Array(6), 2, 3, 1, new Float32Array(2), new Int32Array(1), true), RangeError);
    assert.throws(() => n.extreme(new Float32Array(6), 2, 3, 1, new Float32Array(2), new Float32Array(2) as unknown as Int32Array, true), TypeError);
  });
});

// ---- fused Adam / AdamW -------------------------------------------------------------------------------------

test('native Adam / AdamW update is bit-identical to the TypeScript loop (amsgrad, maximize, L2 and decoupled decay)', { skip }, () => {
  const wasNative = backendName() === 'native';
  const sizes = [1, 17, 100003]; // the last crosses the kernel's 32768-element chunks (several threads)
  type Make = (ps: T.Tensor[]) => Optimizer<Record<string, number | boolean>>;
  const configs: [string, Make][] = [
    ['Adam', (ps) => new Adam(ps, { lr: 1e-3 })],
    ['Adam L2 + amsgrad', (ps) => new Adam(ps, { lr: 3e-3, weight_decay: 0.1, amsgrad: true })],
    ['AdamW', (ps) => new AdamW(ps, { lr: 1e-4 })],
    ['AdamW betas, eps, wd, maximize', (ps) => new AdamW(ps, { lr: 2e-2, betas: [0.5, 0.95], eps: 1e-6, weight_decay: 0.3, maximize: true })],
    ['AdamW amsgrad', (ps) => new AdamW(ps, { lr: 1e-3, amsgrad: true })],
  ];
  // Three steps from the same start with the same gradients (spanning 1e-9 … 1e3 in size, with zeros).
  const run = (make: Make, seed: number): Float32Array[] => {
    const base = T.tensor(rand32(3 * 7, seed), [3, 7]);
    const view = T.slice(base, 0, 1, 2); // a contiguous parameter at storage offset 7
    assert.ok(view.isContiguous() && view.offset === 7);
    const ps: T.Tensor[] = [...sizes.map((n, i) => new Parameter(T.tensor(rand32(n, seed + 1 + i), [n]))), view];
    const opt = make(ps);
    const r = rng(seed);
    for (let step = 0; step < 3; step++) {
      for (const p of ps) {
        const g = rand32(p.size, seed + 10 * step + p.size);
        g.forEach((v, i) => (g[i] = r() < 0.05 ? 0 : v * 10 ** Math.floor(r() * 13 - 9)));
        p.grad?.dispose();
        p.grad = T.keep(T.tensor(g, [...p.shape]));
      }
      opt.step();
    }
    const out = ps.map((p) => Float32Array.from(T.contiguousData(p) as Float32Array));
    for (const p of ps) for (const b of Object.values(opt.state.get(p)!.buffers)) out.push(Float32Array.from(b as Float32Array));
    return out;
  };
  const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
  try {
    let seed = 9500;
    for (const [name, make] of configs) {
      useReferenceKernels();
      assert.equal(K.adamUpdate, tsKernels.adamUpdate, 'reference kernels keep the TypeScript loop');
      const ref = run(make, seed);
      useNativeKernels();
      eachIsa((_n, isa) => {
        assert.notEqual(K.adamUpdate, tsKernels.adamUpdate, 'native kernels use the fused update');
        const got = run(make, seed);
        assert.equal(got.length, ref.length);
        got.forEach((g, k) => assert.deepEqual(bits(g), bits(ref[k]), `${name}[${isa}]: array ${k} differs from the TypeScript loop`));
      });
      seed += 100;
    }
  } finally {
    if (wasNative) useNativeKernels();
    else useReferenceKernels();
  }
  const n = nativeAddon();
  const a = new Float32Array(8);
  const h = { beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 1e-3, bc2sqrt: 1, l2: 0, decay: 1, sign: 1 };
  assert.throws(() => n.adamUpdate(a, 1, a, a, a, null, 8, h), RangeError);
  assert.throws(() => n.adamUpdate(a, 0, a, new Float32Array(7), a, null, 8, h), RangeError);
  const { eps: _eps, ...noEps } = h;
  assert.throws(() => n.adamUpdate(a, 0, a, a, a, null, 8, noEps as typeof h), /adamUpdate: argument 7: expected a number eps/);
});

// ---- the kernel list ------------------------------------------------------------------------------------

test('fmaPeak (the bench\'s peak): lanes of the active ISA in out[0], one finite sum per thread, a short buffer refused', { skip }, () => {
  const n = nativeAddon();
  const { isa, threads } = n.info();
  const out = new Float32Array(threads + 1).fill(NaN);
  n.fmaPeak(1000, out);
  assert.equal(out[0], ({ avx512: 16, avx2: 8 } as Record<string, number>)[isa] ?? out[0]);
  assert.ok([1, 4, 8, 16].includes(out[0]), `lanes ${out[0]}`);
  for (let t = 1; t <= threads; t++) assert.ok(Number.isFinite(out[t]) && out[t] > 0, `thread ${t - 1}: ${out[t]}`);
  assert.throws(() => n.fmaPeak(10, new Float32Array(threads)), /fmaPeak: argument 1/);
});

test('the addon exports every kernel of its list (native/kernel_list.h) with its argument count; K uses them', { skip }, () => {
  const n = nativeAddon();
  const { kernels, args } = n.info();
  assert.ok(kernels.length >= 25, `only ${kernels.length} kernels listed`);
  assert.deepEqual(Object.keys(args), kernels);
  const raw = n as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const k of kernels) {
    assert.equal(typeof raw[k], 'function', `${k} is listed but not exported`);
    assert.ok(Number.isInteger(args[k]) && args[k] > 0, `${k}: argument count ${args[k]}`);
    // One argument short is refused before anything is read.
    assert.throws(() => raw[k](...new Array(args[k] - 1).fill(0)), new RegExp(`^TypeError: ldm native ${k}: too few arguments$`));
  }
  assert.deepEqual([args.gemm, args.conv2dForward, args.conv2dBackwardInput, args.conv2dBackwardWeight, args.adamUpdate], [21, 5, 4, 5, 8]);
  // With the native backend, every table entry that has a native kernel (or rides on one) is the native one.
  const wasNative = backendName() === 'native';
  try {
    useNativeKernels();
    const rides: Record<string, string> = { copyStrided: 'unary', logSoftmaxForward: 'softmaxForward', logSoftmaxBackward: 'softmaxBackward', conv2dPackInfo: 'conv2dPackWeights', gemmPackInfo: 'gemmPackB' };
    for (const name of Object.keys(tsKernels) as (keyof typeof tsKernels)[]) {
      const native = kernels.includes(rides[name] ?? name);
      assert.equal(K[name] !== tsKernels[name], native, `K.${name} ${native ? 'should' : 'should not'} be the native kernel`);
    }
  } finally {
    if (!wasNative) useReferenceKernels();
  }
});

test('native conv2d: the geometry object is checked field by field before any buffer is read', { skip }, () => {
  const n = nativeAddon();
  const g = { N: 1, C: 2, H: 4, W: 4, O: 3, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, OH: 4, OW: 4 };
  const x = rand32(32, 1), w = rand32(54, 2), out = new Float32Array(48);
  n.conv2dForward(g, x, w, null, out);
  const ref = new Float64Array(48);
  tsKernels.conv2dForward(g, f64(x), f64(w), null, ref);
  close(out, ref, 'conv via geometry object', 2e-6, 1e-6);
  const { OW: _ow, ...noOW } = g;
  assert.throws(() => n.conv2dForward(noOW as typeof g, x, w, null, out), /^TypeError: ldm native conv2dForward: argument 0: expected a number OW$/);
  assert.throws(() => n.conv2dForward({ ...g, N: -1 }, x, w, null, out), /N must be a non-negative integer/);
  assert.throws(() => n.conv2dForward({ ...g, kh: 2.5 }, x, w, null, out), /kh must be a non-negative integer/);
  assert.throws(() => n.conv2dBackwardInput({ ...g, sw: 0 }, out, w, x), /stride must be at least 1/);
  assert.throws(() => n.conv2dBackwardWeight({ ...g, OH: 5 }, x, out, w, null), /argument 2 holds 48 elements, needs 60/);
  assert.throws(() => n.conv2dForward(null as unknown as typeof g, x, w, null, out), /expected an object argument/);
});
