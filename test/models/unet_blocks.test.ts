// UNet building blocks checked against direct (loop) implementations of the reference formulas, for the
// paths the parity fixtures do not cover: QKVAttention (new order), ADM legacy channel order, cross-attention
// head layout, GEGLU order, pooling/nearest resamplers without conv_resample, and gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { Builder } from '../../src/nn/build.js';
import {
  AttentionBlock, CrossAttention, Downsample, GEGLU, qkvAttention, qkvAttentionLegacy, unetFromParams, Upsample,
} from '../../src/models/unet/index.js';
import { assertClose } from '../helpers/gradcheck.js';

/** softmax attention for one head: q,k,v given as [ch][T] accessors. */
function naiveHead(q: (c: number, t: number) => number, k: (c: number, t: number) => number, v: (c: number, t: number) => number, ch: number, L: number): number[][] {
  const s = 1 / Math.sqrt(Math.sqrt(ch));
  const out = Array.from({ length: ch }, () => new Array<number>(L).fill(0));
  for (let t = 0; t < L; t++) {
    const w = new Array<number>(L);
    let mx = -Infinity;
    for (let u = 0; u < L; u++) {
      let d = 0;
      for (let c = 0; c < ch; c++) d += q(c, t) * s * (k(c, u) * s);
      w[u] = d;
      mx = Math.max(mx, d);
    }
    let z = 0;
    for (let u = 0; u < L; u++) z += (w[u] = Math.exp(w[u] - mx));
    for (let c = 0; c < ch; c++) {
      let a = 0;
      for (let u = 0; u < L; u++) a += (w[u] / z) * v(c, u);
      out[c][t] = a;
    }
  }
  return out;
}

test('QKVAttentionLegacy: per-head [q|k|v] channel order; QKVAttention: q, k, v blocks first', () => {
  const B = 2, H = 3, ch = 4, L = 5;
  const qkv = T.randn([B, 3 * H * ch, L], new T.Generator(7));
  const x = qkv.toArray();
  const at = (b: number, c: number, t: number) => x[(b * 3 * H * ch + c) * L + t];
  const legacy = qkvAttentionLegacy(qkv, H).toArray();
  const newer = qkvAttention(qkv, H).toArray();
  const expLegacy: number[] = [], expNew: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = h * 3 * ch;
      const o = naiveHead((c, t) => at(b, base + c, t), (c, t) => at(b, base + ch + c, t), (c, t) => at(b, base + 2 * ch + c, t), ch, L);
      expLegacy.push(...o.flat());
      const o2 = naiveHead((c, t) => at(b, h * ch + c, t), (c, t) => at(b, H * ch + h * ch + c, t), (c, t) => at(b, 2 * H * ch + h * ch + c, t), ch, L);
      expNew.push(...o2.flat());
    }
  }
  assertClose(legacy, expLegacy, 1e-5, 'legacy');
  assertClose(newer, expNew, 1e-5, 'new order');
  assert.throws(() => qkvAttentionLegacy(T.zeros([1, 10, 2]), 3), /divisible/);
});

test('AttentionBlock: x + proj_out(attention(qkv(GN(x)))), heads from num_head_channels', () => {
  const b = new Builder({ gen: new T.Generator(1) });
  const blk = new AttentionBlock(64, b, { numHeadChannels: 16 });
  assert.equal(blk.heads, 4);
  assert.equal(new AttentionBlock(64, b, { numHeads: 2 }).heads, 2);
  // zero-initialised proj_out: identity at init
  const x = T.randn([1, 64, 3, 3], new T.Generator(2));
  assert.deepEqual(blk.forward(x).toArray(), x.toArray());
});

test('CrossAttention: no q/k/v bias, heads outer in the channel dim, scale d^−½; context switches to cross-attention', () => {
  const b = new Builder({ gen: new T.Generator(3) });
  const heads = 2, d = 3, qd = 5, cd = 4, N = 4, M = 2;
  const attn = new CrossAttention(qd, b, { contextDim: cd, heads, dimHead: d });
  assert.deepEqual([...attn.stateDict()].map(([k, t]) => `${k}:${t.shape}`), [
    'to_q.weight:6,5', 'to_k.weight:6,4', 'to_v.weight:6,4', 'to_out.0.weight:5,6', 'to_out.0.bias:5',
  ]);
  const x = T.randn([1, N, qd], new T.Generator(4));
  const ctx = T.randn([1, M, cd], new T.Generator(5));
  const y = attn.forward(x, ctx).toArray();
  const W = (l: unknown) => (l as { weight: T.Tensor }).weight.toArray();
  const lin = (v: number[], w: number[], out: number, inp: number) => Array.from({ length: out }, (_, o) => v.reduce((s, vi, i) => s + vi * w[o * inp + i], 0));
  const xs = x.toArray(), cs = ctx.toArray();
  const q = Array.from({ length: N }, (_, n) => lin(xs.slice(n * qd, n * qd + qd), W(attn.to_q), heads * d, qd));
  const k = Array.from({ length: M }, (_, m) => lin(cs.slice(m * cd, m * cd + cd), W(attn.to_k), heads * d, cd));
  const v = Array.from({ length: M }, (_, m) => lin(cs.slice(m * cd, m * cd + cd), W(attn.to_v), heads * d, cd));
  const merged = Array.from({ length: N }, () => new Array<number>(heads * d).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let n = 0; n < N; n++) {
      const s = k.map((kk) => kk.slice(h * d, h * d + d).reduce((a, kv, i) => a + kv * q[n][h * d + i], 0) / Math.sqrt(d));
      const mx = Math.max(...s);
      const e = s.map((z) => Math.exp(z - mx));
      const Z = e.reduce((a, z) => a + z, 0);
      for (let i = 0; i < d; i++) merged[n][h * d + i] = e.reduce((a, w, m) => a + (w / Z) * v[m][h * d + i], 0);
    }
  }
  const outL = attn.to_out[0] as unknown as { weight: T.Tensor; bias: T.Tensor };
  const bias = outL.bias.toArray();
  const expected = merged.flatMap((r) => lin(r, outL.weight.toArray(), qd, heads * d).map((z, o) => z + bias[o]));
  assertClose(y, expected, 1e-5, 'cross-attention');
});

test('GEGLU: first half is the value, second half the gate: a · gelu(gate)', () => {
  const g = new GEGLU(3, 2, new Builder({ gen: new T.Generator(6) }));
  const x = T.randn([1, 3], new T.Generator(8));
  const p = (g.proj as unknown as { forward(x: T.Tensor): T.Tensor }).forward(x).toArray(); // [a0 a1 g0 g1]
  const erf = (z: number) => {
    // Abramowitz–Stegun 7.1.26 is too coarse; integrate the series instead
    let s = 0, term = z;
    for (let n = 0; n < 60; n++) {
      s += term / (2 * n + 1);
      term *= (-z * z) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * s;
  };
  const gelu = (z: number) => 0.5 * z * (1 + erf(z / Math.SQRT2));
  assertClose(g.forward(x).toArray(), [p[0] * gelu(p[2]), p[1] * gelu(p[3])], 1e-6, 'GEGLU');
});

test('resamplers: conv Downsample is stride 2 pad 1; without conv_resample: 2×2 mean pooling and plain nearest ×2', () => {
  const b = new Builder({ gen: new T.Generator(9) });
  const x = T.randn([1, 2, 4, 6], new T.Generator(10));
  const d = new Downsample(2, true, b);
  assert.deepEqual(d.forward(x).shape, [1, 2, 2, 3]);
  const pool = new Downsample(2, false, b);
  assert.deepEqual([...pool.stateDict().keys()], []);
  const xv = x.toArray();
  assertClose(pool.forward(x).toArray().slice(0, 1), [(xv[0] + xv[1] + xv[6] + xv[7]) / 4], 1e-6, 'avg pool');
  const up = new Upsample(2, false, b).forward(x);
  assert.deepEqual(up.shape, [1, 2, 8, 12]);
  assert.deepEqual(up.toArray().slice(0, 4), [xv[0], xv[0], xv[1], xv[1]]);
  // a UNet without conv_resample has no op/conv keys and still runs
  const unet = unetFromParams({ in_channels: 2, model_channels: 32, out_channels: 2, num_res_blocks: 1, attention_resolutions: [2], channel_mult: [1, 1], num_heads: 2, conv_resample: false, use_new_attention_order: true }, { gen: new T.Generator(11) });
  assert.ok(![...unet.stateDict().keys()].some((k) => /\.op\.|\.conv\./.test(k)));
  assert.deepEqual(T.noGrad(() => unet.forward(x, T.tensor([5], [1], 'int64'))).shape, [1, 2, 4, 6]);
});

test('UNet: every parameter receives a finite gradient (training path), and dropout only acts in training', () => {
  const unet = unetFromParams({
    in_channels: 2, model_channels: 32, out_channels: 2, num_res_blocks: 1, attention_resolutions: [1, 2], channel_mult: [1, 2],
    num_head_channels: 8, use_spatial_transformer: true, context_dim: 6, legacy: true, dropout: 0.5,
  }, { gen: new T.Generator(12) });
  // zero_module'd outputs would block gradients to everything else; give them values first
  for (const [k, p] of unet.namedParameters()) if (/out_layers\.3|proj_out|^out\.2/.test(k)) (p.data as Float32Array).fill(0.01);
  const x = T.randn([2, 2, 4, 4], new T.Generator(13));
  const ctx = T.randn([2, 3, 6], new T.Generator(14));
  const t = T.tensor([3, 999], [2], 'int64');
  unet.eval();
  const a = T.noGrad(() => unet.forward(x, t, ctx)).toArray();
  const a2 = T.noGrad(() => unet.forward(x, t, ctx)).toArray();
  assert.deepEqual(a, a2, 'eval mode is deterministic');
  unet.train();
  const out = unet.forward(x, t, ctx);
  assert.notDeepEqual(out.toArray(), a, 'dropout 0.5 changes the training-mode output');
  const loss = T.mean(T.square(out));
  loss.backward();
  let n = 0;
  for (const [k, p] of unet.namedParameters()) {
    assert.ok(p.grad, `${k} got no gradient`);
    assert.ok(p.grad.toArray().every(Number.isFinite), `${k}: non-finite gradient`);
    n++;
  }
  assert.ok(n > 100);
  unet.zeroGrad();
});
