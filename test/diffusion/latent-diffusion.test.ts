// LatentDiffusion glue: conditioning routing per conditioning_key, q_sample, p_losses, tiling helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { DiffusionWrapper, type ConditioningKey } from '../../src/diffusion/latent-diffusion.js';
import { deltaBorder, tiledApply, windowStarts, defaultSplitInputParams } from '../../src/diffusion/tiling.js';
import type { UNetModel } from '../../src/models/unet/unet.js';
import { tinyConfig, tinyModel } from '../tasks/helpers.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { sampleLatents } from '../../src/diffusion/sample-latents.js';
import { seededNoise } from '../../src/diffusion/noise.js';

/** A stand-in UNet that records what it was called with. */
function recorder() {
  const calls: { x: number[]; t: number[]; context: number[] | null; y: number[] | null }[] = [];
  const unet = {
    forward(x: T.Tensor, t: T.Tensor, context: T.Tensor | null = null, y: T.Tensor | null = null) {
      calls.push({ x: [...x.shape], t: t.toArray(), context: context ? [...context.shape] : null, y: y ? y.toArray() : null });
      return x;
    },
  } as unknown as UNetModel;
  return { unet, calls };
}

test('DiffusionWrapper routes conditioning like the reference for every conditioning_key', () => {
  const x = T.zeros([2, 3, 4, 4]), t = T.tensor([5, 5]);
  const c1 = T.ones([2, 2, 4, 4]), c2 = T.ones([2, 1, 4, 4]);
  const s1 = T.ones([2, 7, 8]), s2 = T.ones([2, 3, 8]);
  const run = (key: ConditioningKey, concat: T.Tensor[] | null, cross: T.Tensor[] | null) => {
    const { unet, calls } = recorder();
    const out = new DiffusionWrapper(unet, key).forward(x, t, concat, cross);
    return { out, call: calls[0] };
  };
  assert.deepEqual(run(null, null, null).call, { x: [2, 3, 4, 4], t: [5, 5], context: null, y: null });
  const cat = run('concat', [c1, c2], null);
  assert.deepEqual(cat.call.x, [2, 6, 4, 4]);
  // x first, then the conditioning channels
  assert.deepEqual(T.slice(cat.out, 1, 0, 3).toArray().every((v) => v === 0), true);
  assert.deepEqual(T.slice(cat.out, 1, 3).toArray().every((v) => v === 1), true);
  assert.deepEqual(run('crossattn', null, [s1, s2]).call.context, [2, 10, 8]);
  const hyb = run('hybrid', [c1], [s1]).call;
  assert.deepEqual([hyb.x, hyb.context], [[2, 5, 4, 4], [2, 7, 8]]);
  assert.deepEqual(run('adm', null, [T.tensor([3, 9], [2], 'int64')]).call.y, [3, 9]);
  assert.throws(() => run('concat', null, null), /concat conditioning is missing/);
});

test('q_sample and p_losses (l1 config) follow the formulas; apply_model wraps a plain tensor per key', () => {
  const m = tinyModel('inpainting'); // concat, loss_type l1
  const s = m.schedule();
  const x0 = T.randn([2, 3, 8, 8], new T.Generator(1)), noise = T.randn([2, 3, 8, 8], new T.Generator(2));
  const t = T.tensor([10, 700], [2], 'int64');
  const xt = m.qSample(x0, t, noise).toArray(), a = x0.toArray(), n = noise.toArray();
  for (const i of [0, 191, 192, 383]) {
    const ti = i < 192 ? 10 : 700;
    assert.ok(Math.abs(xt[i] - (s.sqrt_alphas_cumprod[ti] * a[i] + s.sqrt_one_minus_alphas_cumprod[ti] * n[i])) < 1e-6);
  }
  const c = T.randn([2, 4, 8, 8], new T.Generator(3));
  const { loss, lossSimple } = T.noGrad(() => m.pLosses(x0, c, t, noise));
  const eps = T.noGrad(() => m.applyModel(m.qSample(x0, t, noise), t, { c_concat: [c] })).toArray();
  const l1 = eps.reduce((acc, v, i) => acc + Math.abs(n[i] - v), 0) / eps.length;
  assert.ok(Math.abs(loss.item() - l1) < 1e-5 * l1, `l1 loss ${loss.item()} vs ${l1}`);
  assert.equal(lossSimple.item(), loss.item());
  // a bare tensor is c_concat for a concat model
  const bare = T.noGrad(() => m.applyModel(m.qSample(x0, t, noise), t, c)).toArray();
  assert.deepEqual(bare, eps);
});

test('__is_first_stage__: the conditioning encoder is the first stage (shared weights, both key prefixes)', () => {
  const m = tinyModel('inpainting');
  assert.equal(m.cond_stage_model, m.first_stage_model);
  const keys = [...m.stateDict().keys()];
  assert.ok(keys.includes('cond_stage_model.encoder.conv_in.weight') && keys.includes('first_stage_model.encoder.conv_in.weight'));
  assert.ok(keys.includes('model.diffusion_model.input_blocks.0.0.weight'));
  for (const k of ['betas', 'alphas_cumprod', 'posterior_mean_coef2']) assert.ok(keys.includes(k));
  assert.ok(!keys.includes('lvlb_weights'), 'lvlb_weights is not persistent');
});

test('tiling: window positions, border weights, blending reproduces the input / a resampled input', () => {
  assert.deepEqual(windowStarts(10, 4, 2), [0, 2, 4, 6]);
  assert.deepEqual(windowStarts(11, 4, 3), [0, 3, 6, 7], 'a last window aligned to the edge');
  assert.deepEqual(windowStarts(8, 8, 4), [0], 'one window covering everything');
  const d = deltaBorder(3, 5);
  // y/(h−1), x/(w−1): min over the four borders
  assert.deepEqual([...d], [0, 0, 0, 0, 0, 0, 0.25, 0.5, 0.25, 0, 0, 0, 0, 0, 0]);
  const x = T.randn([1, 2, 12, 10], new T.Generator(4));
  const sp = { ...defaultSplitInputParams(2), ks: [6, 4] as [number, number], stride: [3, 3] as [number, number], tie_braker: true };
  const same = tiledApply(x, sp, 1, (c) => c).toArray();
  const xs = x.toArray();
  assert.ok(same.every((v, i) => Math.abs(v - xs[i]) < 1e-6), 'identity crops blend back to the input');
  const up = tiledApply(x, sp, 2, (c) => T.upsampleNearest(c, 2)).toArray();
  const ref = T.upsampleNearest(x, 2).toArray();
  assert.ok(up.every((v, i) => Math.abs(v - ref[i]) < 1e-6), '×2 crops blend to the ×2 image');
});

/**
 * float64 re-implementation of the reference's split_input_params path (get_fold_unfold / get_weighting /
 * delta_border, torch Unfold → per-crop function → ·weighting → Fold / Fold(weighting)) for sizes that the
 * windows cover exactly. fn(crop values, crop index) gives the crop output (k·uf square).
 */
function refFold(x: number[], C: number, H: number, W: number, k: [number, number], s: [number, number], uf: number, tie: boolean,
  fn: (crop: number[], i: number) => number[]): number[] {
  const Ly = Math.floor((H - k[0]) / s[0]) + 1, Lx = Math.floor((W - k[1]) / s[1]) + 1;
  const delta = (h: number, w: number) => {
    const out: number[] = [];
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      const ay = y / (h - 1), ax = xx / (w - 1);
      out.push(Math.min(Math.min(ay, ax), Math.min(1 - ay, 1 - ax)));
    }
    return out;
  };
  const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const kh = k[0] * uf, kw = k[1] * uf, OH = H * uf, OW = W * uf;
  const wBase = delta(kh, kw).map((v) => clip(v, 0.01, 0.5));
  const wTie = tie ? delta(Ly, Lx).map((v) => clip(v, 0.01, 0.5)) : null;
  const acc = new Array<number>(C * OH * OW).fill(0), norm = new Array<number>(OH * OW).fill(0);
  for (let iy = 0; iy < Ly; iy++) for (let ix = 0; ix < Lx; ix++) {
    const l = iy * Lx + ix;
    const crop: number[] = [];
    for (let c = 0; c < C; c++) for (let y = 0; y < k[0]; y++) for (let xx = 0; xx < k[1]; xx++) crop.push(x[(c * H + iy * s[0] + y) * W + ix * s[1] + xx]);
    const o = fn(crop, l);
    for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) {
      const w = wBase[y * kw + xx] * (wTie ? wTie[l] : 1);
      const p = (iy * s[0] * uf + y) * OW + ix * s[1] * uf + xx;
      norm[p] += w;
      for (let c = 0; c < C; c++) acc[c * OH * OW + p] += o[(c * kh + y) * kw + xx] * w;
    }
  }
  return acc.map((v, i) => v / norm[i % (OH * OW)]);
}

test('tiling: crop-dependent outputs are blended with the reference fold weights (UNet and ×uf decode windows, tie breaker)', () => {
  const C = 2, H = 12, W = 15;
  const x = T.randn([1, C, H, W], new T.Generator(21));
  const xs = x.toArray();
  for (const tie of [false, true]) {
    // UNet-like: same size, output depends on the crop index and nonlinearly on the values
    const sp = { ...defaultSplitInputParams(3), ks: [6, 5] as [number, number], stride: [3, 5] as [number, number], tie_braker: tie };
    const got = tiledApply(x, sp, 1, (c, _e, i) => T.add(T.mul(T.square(c), 0.5), i + 1)).toArray();
    const want = refFold(xs, C, H, W, sp.ks, sp.stride, 1, tie, (crop, i) => crop.map((v) => 0.5 * v * v + i + 1));
    const err = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
    assert.ok(err < 1e-5, `tie ${tie}, uf 1: max error ${err}`);
    // decode-like: each crop grows ×3 (nearest), plus a crop-index offset
    const up = tiledApply(x, sp, 3, (c, _e, i) => T.mul(T.upsampleNearest(c, 3), i + 1)).toArray();
    const wantUp = refFold(xs, C, H, W, sp.ks, sp.stride, 3, tie, (crop, i) => {
      const o: number[] = [];
      for (let c = 0; c < C; c++) for (let y = 0; y < 18; y++) for (let xx = 0; xx < 15; xx++) o.push(crop[(c * 6 + Math.floor(y / 3)) * 5 + Math.floor(xx / 3)] * (i + 1));
      return o;
    });
    const errUp = Math.max(...up.map((v, i) => Math.abs(v - wantUp[i])));
    assert.ok(errUp < 1e-5, `tie ${tie}, uf 3: max error ${errUp}`);
  }
});

test('DDPM on an x0-parameterized model uses the model output as x̂₀ (LatentDiffusion.p_mean_variance)', () => {
  const cfg = tinyConfig('unconditional') as { params: Record<string, unknown> };
  cfg.params.parameterization = 'x0';
  const m = instantiate<LatentDiffusion>(cfg as never, 'model', { gen: new T.Generator(3) }).eval();
  const x0 = T.randn([1, 3, 8, 8], new T.Generator(5));
  const r = T.noGrad(() => sampleLatents(m, { sampler: 'ddpm', steps: 0, cond: null, init: { x0, strength: 0.003 }, seed: 9 }));
  assert.equal(r.steps, 3);
  // float64 p_sample with the model output taken as x̂₀, from the same noise stream
  const s = m.schedule();
  const noise = seededNoise(9);
  const z0 = noise([1, 3, 8, 8]).toArray();
  let x = x0.toArray().map((v, i) => s.sqrt_alphas_cumprod[2] * v + s.sqrt_one_minus_alphas_cumprod[2] * z0[i]);
  for (let t = 2; t >= 0; t--) {
    const out = T.noGrad(() => m.applyModel(T.tensor(Float32Array.from(x), [1, 3, 8, 8]), t, null)).toArray();
    const z = noise([1, 3, 8, 8]).toArray();
    x = x.map((v, i) => s.posterior_mean_coef1[t] * out[i] + s.posterior_mean_coef2[t] * v + (t > 0 ? Math.exp(0.5 * s.posterior_log_variance_clipped[t]) * z[i] : 0));
  }
  const got = r.x.toArray();
  const err = Math.max(...got.map((v, i) => Math.abs(v - x[i])));
  assert.ok(err < 1e-4, `x0-parameterized DDPM: max error ${err}`);
});
