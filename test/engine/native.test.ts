// Native kernels (native/, loaded by src/engine/kernels/native.ts) against the TypeScript reference
// kernels, for every instruction set this CPU runs (AVX-512, AVX2, portable). The references run in
// float64 on the same float32 inputs; tolerances scale with the size of the sums involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tsKernels } from '../../src/engine/kernels/index.js';
import { nativeAddon, nativeAvailable, nativeLoadError, type NativeAddon } from '../../src/engine/kernels/native.js';

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
  n.gemm(transA, transB, M, N, K, c.alpha, A, c.aOff, lda, sA, B, c.bOff, ldb, sB, c.beta, out, c.cOff, ldc, sC, batch);
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
    for (const [M, N, K, transA, transB] of [[300, 530, 600, false, false], [257, 129, 513, true, true], [1, 777, 300, false, true], [400, 3, 70, true, false]] as const) {
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
    n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0.5, C, 0, 2, 0, 1);
    assert.deepEqual([...C], [0.5, 1, 1.5, 2], `[${isa}] K = 0, beta 0.5`);
    n.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, 0, new Float32Array(0), 0, 2, 0, 0, C, 0, 2, 0, 1);
    assert.deepEqual([...C], [0, 0, 0, 0], `[${isa}] K = 0, beta 0`);
    // Three batches into the same C with beta = 1: C = Σ_b A_b B.
    const A = Float32Array.from([1, 2, 3, 4, 5, 6]); // three 1×2 rows
    const B = Float32Array.from([1, 10]); // 2×1
    const out = Float32Array.from([100]);
    n.gemm(false, false, 1, 1, 2, 1, A, 0, 2, 2, B, 0, 1, 0, 1, out, 0, 1, 0, 3);
    assert.equal(out[0], 100 + 21 + 43 + 65, `[${isa}] strideC 0`);
  });
});

test('native gemm: bad extents throw instead of touching memory', { skip }, () => {
  const n = nativeAddon();
  const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, a, 1, 3, 0, b, 0, 2, 0, 0, c, 0, 2, 0, 1), /A is too short/);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, a, 0, 3, 0, b, 0, 2, 0, 0, c, 1, 2, 0, 1), /C is too short/);
  assert.throws(() => n.gemm(false, false, 2, 2, 3, 1, new Float64Array(6) as unknown as Float32Array, 0, 3, 0, b, 0, 2, 0, 0, c, 0, 2, 0, 1), /Float32Array/);
});

// ---- elementwise ----------------------------------------------------------------------------------------

interface View { data: Float32Array; offset: number; strides: number[] }

/** A strided view over `shape`: contiguous, offset, permuted, stepped or broadcast (stride 0) by kind. */
function makeView(shape: number[], kind: number, seed: number, lo = -3, hi = 3): View {
  const nd = shape.length;
  const r = rng(seed);
  const order = [...Array(nd).keys()];
  if (kind === 2 && nd > 1) order.reverse(); // transposed layout
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
const SHAPES = [[1], [7], [37], [1000], [3, 17], [4, 1, 33], [2, 3, 5, 7], [5, 129], [2, 40000]];

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
        for (const kind of [0, 1, 2, 3, 4, 5]) {
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
