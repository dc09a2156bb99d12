// Packed convolution weights kept across calls (T.withWeightCache): the Winograd paths' transformed kernels are
// packed once and reused; results are bit-identical to uncached calls, the budget is respected, packs end with
// the scope, and a pack made for another geometry or kernel set is refused by the native kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { nativeAddon, nativeAvailable } from '../../src/engine/kernels/native.js';
import type { ConvGeometry } from '../../src/engine/kernels/conv.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { sampleLatents } from '../../src/diffusion/sample-latents.js';
import { tinyConfig } from '../tasks/helpers.js';

const native = nativeAvailable() && T.backendName() === 'native';
const skip = native ? false : 'packs are made by the native Winograd kernels';
// Where the active kernel set takes Winograd for these layers (the portable set wants 64 channels and tiles).
const avx = native && ['avx2', 'avx512'].includes(nativeAddon().info().isa);

const geom = (N: number, C: number, S: number, O: number): ConvGeometry =>
  ({ N, C, H: S, W: S, O, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, OH: S, OW: S });

function convBits(x: T.Tensor, w: T.Tensor, b: T.Tensor): Float32Array {
  return Float32Array.from(T.contiguousData(T.conv2d(x, w, b, { padding: 1 })) as Float32Array);
}

test('cached Winograd packs give the uncached bits on the fused, streamed and F(2×2) paths, within the budget', { skip }, () => {
  // 4×64×32×32: fused F(4×4) tasks; 1×384×16×16: the streamed F(4×4) tasks; 1×256×8×8: F(2×2) (AVX2 / AVX-512);
  // 1×32×6×6: no Winograd (nothing to pack).
  const gen = new T.Generator(4);
  for (const [N, C, S, O] of [[4, 64, 32, 64], [1, 384, 16, 384], [1, 256, 8, 256], [1, 32, 6, 32]]) {
    const x = T.randn([N, C, S, S], gen), w = T.mul(T.randn([O, C, 3, 3], gen), 0.05), b = T.randn([O], gen);
    const plain = convBits(x, w, b);
    const info = T.K.conv2dPackInfo(geom(N, C, S, O));
    const what = `${N}×${C}×${S}×${S} → ${O}`;
    if (N * C * S === 32 * 6) assert.equal(info, null, `${what}: the direct path packs nothing`);
    else if (avx) assert.ok(info && info.floats > O * C * 9, `${what}: expected a Winograd pack, got ${JSON.stringify(info)}`);
    T.withWeightCache(1 << 30, () => {
      const first = convBits(x, w, b), second = convBits(x, w, b);
      const s = T.weightCacheStats()!;
      assert.deepEqual(first, plain, `${what}: first cached call`);
      assert.deepEqual(second, plain, `${what}: call from the kept pack`);
      if (info) {
        assert.deepEqual([s.packed, s.hits, s.overBudget, s.bytes], [1, 1, 0, 4 * info.floats], `${what}: ${JSON.stringify(s)}`);
      } else {
        assert.deepEqual([s.packed, s.hits, s.bytes], [0, 0, 0], `${what}: ${JSON.stringify(s)}`);
      }
    });
    if (!info) continue;
    // A budget below the pack: nothing kept, the same bits.
    T.withWeightCache(4 * info.floats - 1, () => {
      assert.deepEqual(convBits(x, w, b), plain, `${what}: over budget`);
      const s = T.weightCacheStats()!;
      assert.deepEqual([s.packed, s.hits, s.overBudget, s.bytes], [0, 0, 1, 0], `${what}: over budget: ${JSON.stringify(s)}`);
    });
  }
  assert.equal(T.weightCacheStats(), null, 'the scope ended: no cache');
});

test('a pack is refused for another geometry, another kernel set, or a wrong size', { skip: skip || (!avx && 'needs AVX2') }, () => {
  const n = nativeAddon();
  const g = geom(1, 256, 16, 256), w = new Float32Array(256 * 256 * 9).fill(0.01), x = new Float32Array(256 * 256), out = new Float32Array(256 * 256);
  const [floats] = n.conv2dPackWeights(g, null, null);
  const pack = new Float32Array(floats);
  n.conv2dPackWeights(g, w, pack);
  n.conv2dForward(g, x, w, null, out, pack);  // its own geometry: accepted
  // F(2×2) on an 8×8 image wants another layout (16 positions, not 36).
  const g8 = geom(1, 256, 8, 256);
  assert.throws(() => n.conv2dForward(g8, x, w, null, out, pack), /do not fit this convolution/);
  assert.throws(() => n.conv2dPackWeights(g, w, new Float32Array(floats - 1)), /pack buffer holds/);
  const isas = n.info().isas, before = n.info().isa;
  const other = isas.find((i) => i !== before && (i === 'avx2' || i === 'avx512'));
  if (other) {
    try {
      n.setIsa(other);
      assert.throws(() => n.conv2dForward(g, x, w, null, out, pack), /layout/);
    } finally {
      n.setIsa(before);
    }
  }
});

test('sampleLatents keeps the packs from step to step (weightCacheBytes) and samples the same bits', { skip }, () => {
  const m = instantiate<LatentDiffusion>(tinyConfig('unconditional') as never, 'model', { gen: new T.Generator(3) }).eval();
  // Random weights throughout (a fresh UNet zeroes its blocks' last convolutions).
  const gen = new T.Generator(8);
  for (const p of m.model.parameters()) {
    const r = T.mul(T.randn([...p.shape], gen), 1 / Math.sqrt(Math.max(1, p.size / p.shape[0])));
    (p.data as Float32Array).set(T.contiguousData(r) as Float32Array, p.offset);
  }
  const steps = 4;
  const run = (bytes: number) => {
    let stats: T.WeightCacheStats | null = null;
    const r = T.noGrad(() => sampleLatents(m, {
      sampler: 'ddim', steps, eta: 0, cond: null, shape: [2, 3, 16, 16], seed: 5, weightCacheBytes: bytes,
      onStep: () => {
        stats = T.weightCacheStats();
      },
    }));
    return { x: Float32Array.from(T.contiguousData(r.x) as Float32Array), stats: stats as T.WeightCacheStats | null };
  };
  const plain = run(0), cached = run(1 << 30);
  assert.equal(plain.stats, null, 'no budget: no cache');
  assert.deepEqual(cached.x, plain.x, 'cached sampling changed the result');
  const s = cached.stats!;
  assert.ok(s, 'the sampler ran inside a cache scope');
  if (avx) {
    assert.ok(s.packed > 0, `no convolution was packed: ${JSON.stringify(s)}`);
    assert.equal(s.hits, (steps - 1) * s.packed, `every later step reads every pack: ${JSON.stringify(s)}`);
  }
});

test('a WeightCache kept across runs packs once, restores the cache in use after run(), and clear() drops its packs', { skip: skip || (!avx && 'needs AVX2') }, () => {
  const gen = new T.Generator(6);
  const x = T.randn([1, 256, 16, 16], gen), w = T.mul(T.randn([256, 256, 3, 3], gen), 0.05), b = T.randn([256], gen);
  const plain = convBits(x, w, b);
  const cache = new T.WeightCache(1 << 30), other = new T.WeightCache(1 << 30);
  for (let i = 0; i < 3; i++) assert.deepEqual(cache.run(() => convBits(x, w, b)), plain, `run ${i}`);
  assert.deepEqual([cache.stats().packed, cache.stats().hits], [1, 2]);
  cache.run(() => {
    other.run(() => convBits(x, w, b));
    assert.equal(T.weightCacheStats()!.hits, 2, 'the outer cache is in use again after the inner run');
    T.withWeightCache(1 << 30, () => convBits(x, w, b));  // inside a cache in use: that one serves
  });
  assert.deepEqual([other.stats().packed, cache.stats().hits], [1, 3]);
  cache.clear();
  assert.equal(cache.stats().bytes, 0);
  assert.deepEqual(cache.run(() => convBits(x, w, b)), plain);
  assert.equal(cache.stats().packed, 2, 'packed again after clear()');
  assert.throws(() => new T.WeightCache(-1), /budget must be a number of bytes ≥ 0/);
});

test('linear layers read their weight packed once as the product\'s B: the uncached bits, with and without bias and batch', { skip }, () => {
  const gen = new T.Generator(9);
  // M × K → N: tokens over out features (split over columns), over rows (shared B), a folded batch, a vector,
  // and shapes that are not whole micro-panels.
  for (const [shape, I, O] of [[[1, 64, 96], 96, 768], [[1, 512, 64], 64, 64], [[2, 77, 48], 48, 40], [[33], 33, 17], [[3, 7, 5], 5, 29]] as [number[], number, number][]) {
    const x = T.randn(shape, gen), w = T.randn([O, I], gen), b = T.randn([O], gen);
    for (const bias of [b, null]) {
      const f = () => Float32Array.from(T.contiguousData(T.noGrad(() => T.linear(x, w, bias))) as Float32Array);
      const plain = f();
      const cache = new T.WeightCache(1 << 30);
      const what = `${shape.join('×')} → ${O}${bias ? ' + bias' : ''}`;
      assert.deepEqual(cache.run(f), plain, `${what}: packing call`);
      assert.deepEqual(cache.run(f), plain, `${what}: from the pack`);
      const s = cache.stats();
      if (T.K.gemmPackInfo(I, O)) assert.deepEqual([s.packed, s.hits], [1, 1], `${what}: ${JSON.stringify(s)}`);
    }
  }
  // A product whose B is not a weight's transposed view packs nothing.
  const cache = new T.WeightCache(1 << 30);
  cache.run(() => T.matmul(T.randn([4, 8], gen), T.randn([8, 6], gen)));
  assert.equal(cache.stats().packed, 0);
});

test('a GEMM pack is refused for another K × N or a batch of B operands', { skip }, () => {
  const n = nativeAddon();
  const K = 24, N = 40, M = 3;
  const B = new Float32Array(N * K).fill(0.5), A = new Float32Array(M * K).fill(1), C = new Float32Array(M * N);
  const [floats] = n.gemmPackB(K, N, null, 0, K, true, null);
  const pack = new Float32Array(floats);
  n.gemmPackB(K, N, B, 0, K, true, pack);
  n.gemm(false, true, M, N, K, 1, A, 0, K, 0, B, 0, K, 0, 0, C, 0, N, 0, 1, null, pack);
  assert.ok(C.every((v) => v === 12), `1 · 0.5 summed over K = 24: ${C[0]}`);
  assert.throws(() => n.gemm(false, true, M, N - 8, K, 1, A, 0, K, 0, B, 0, K, 0, 0, C, 0, N, 0, 1, null, pack), /packedB .* does not fit this product/);
  assert.throws(() => n.gemm(false, true, M, N, K, 1, A, 0, K, 0, B, 0, K, N * K, 0, C, 0, N, 0, 1, null, pack), /shared by the batch/);
  assert.throws(() => n.gemmPackB(K, N, B, 0, K, true, new Float32Array(floats + 1)), /pack buffer holds/);
  assert.throws(() => n.gemmPackB(K, N + 1, B, 0, K, true, new Float32Array(n.gemmPackB(K, N + 1, null, 0, K, true, null)[0])), /B is too short/);
});
