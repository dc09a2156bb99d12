import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { modelNode, readYaml, type ConfigNode } from '../../src/io/config.js';
import { instantiate, buildFromConfigFile } from '../../src/loader/targets.js';
import {
  AttnBlock, AutoencoderKL, DiagonalGaussianDistribution, Downsample, VQModel, VQModelInterface, VectorQuantizer2,
} from '../../src/models/autoencoder/index.js';
import { Builder, param } from '../../src/nn/build.js';
import type { Module } from '../../src/nn/index.js';
import { initFromCkpt, loadCheckpointInto } from '../../src/loader/checkpoint.js';
import { assertClose } from '../helpers/gradcheck.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const reference = path.resolve(repoRoot, '../shared/reference');
const fsConfigs = path.join(reference, 'configs/models/first_stage_models');

function loadNode(file: string): { node: ConfigNode; path: string } {
  return modelNode(readYaml(file), file);
}

test('every official first-stage config builds (shape-only) with the key list and shapes of keys/fs_*.tsv', (t) => {
  if (!existsSync(fsConfigs)) {
    t.skip(`reference configs not found at ${fsConfigs}`);
    return;
  }
  const counts: Record<string, [number, number]> = {};
  for (const name of readdirSync(fsConfigs).sort()) {
    const t0 = Date.now();
    const { node, path: p } = loadNode(path.join(fsConfigs, name, 'config.yaml'));
    const m = instantiate<Module>(node, p, { meta: true });
    assert.ok(Date.now() - t0 < 2000, `${name}: a shape-only build must be fast`);
    // keys/*.tsv were produced with lossconfig → Identity: compare without the loss networks.
    const ours = new Map([...m.stateDict()].filter(([k]) => !k.startsWith('loss.')).map(([k, v]) => [k, `(${v.shape.join(', ')}${v.shape.length === 1 ? ',' : ''})`]));
    const ref = readFileSync(path.join(reference, 'keys', `fs_${name}.tsv`), 'utf8').trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual([...ours.keys()].sort(), ref.map((r) => r[0]).sort(), `${name}: key list`);
    for (const [k, shape] of ref) assert.equal(ours.get(k), shape, `${name}: ${k}`);
    const sum = (pre: string) => [...m.stateDict()].filter(([k]) => k.startsWith(pre)).reduce((a, [, v]) => a + v.size, 0);
    counts[name] = [sum('encoder.'), sum('decoder.')];
  }
  // Parameter counts of the released first-stage models (their reference configs).
  assert.equal((counts['kl-f8'][0] / 1e6).toFixed(1), '34.2');
  assert.equal((counts['kl-f8'][1] / 1e6).toFixed(1), '49.5');
  assert.equal((counts['vq-f4'][0] / 1e6).toFixed(1), '22.3');
  assert.equal((counts['vq-f4'][1] / 1e6).toFixed(1), '33.0');
  assert.equal(Object.keys(counts).length, 9);
});

test('the first stages inside every official LDM config build without unknown parameters', (t) => {
  const dirs = [path.join(reference, 'configs/models/ldm'), path.join(reference, 'configs/configs/latent-diffusion')];
  if (!existsSync(dirs[0])) {
    t.skip(`reference configs not found at ${dirs[0]}`);
    return;
  }
  let n = 0;
  for (const d of dirs) {
    for (const f of readdirSync(d).sort()) {
      const file = f.endsWith('.yaml') ? path.join(d, f) : path.join(d, f, 'config.yaml');
      if (!existsSync(file)) continue;
      const { node } = loadNode(file);
      const fs = (node as { params: Record<string, ConfigNode> }).params.first_stage_config;
      const m = instantiate<AutoencoderKL | VQModelInterface>(fs, 'model.params.first_stage_config', { meta: true });
      assert.ok(m instanceof AutoencoderKL || m instanceof VQModelInterface, file);
      assert.ok(m.isMeta);
      n++;
    }
  }
  assert.ok(n >= 18, `built ${n} first stages`);
});

test('config errors name the target or parameter with its full config path', () => {
  const base = (): Record<string, unknown> => ({
    target: 'ldm.models.autoencoder.AutoencoderKL',
    params: {
      embed_dim: 4, lossconfig: { target: 'torch.nn.Identity' },
      ddconfig: { double_z: true, z_channels: 4, resolution: 32, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0 },
    },
  });
  const at = 'model.params.first_stage_config';
  const withFoo = base();
  ((withFoo.params as Record<string, Record<string, unknown>>).ddconfig).foo = 1;
  assert.throws(() => instantiate(withFoo as ConfigNode, at, { meta: true }), /unknown parameter model\.params\.first_stage_config\.params\.ddconfig\.foo for ldm\.models\.autoencoder\.AutoencoderKL/);
  const top = base();
  (top.params as Record<string, unknown>).bar = 1;
  assert.throws(() => instantiate(top as ConfigNode, 'model', { meta: true }), /unknown parameter model\.params\.bar/);
  const badTarget = { ...base(), target: 'ldm.models.autoencoder.Nope' };
  assert.throws(() => instantiate(badTarget as ConfigNode, at), /model\.params\.first_stage_config\.target: unknown target ldm\.models\.autoencoder\.Nope \(known: .*AutoencoderKL/);
  const badLoss = base();
  (badLoss.params as Record<string, unknown>).lossconfig = { target: 'my.Loss' };
  assert.throws(() => instantiate(badLoss as ConfigNode, at), /model\.params\.first_stage_config\.params\.lossconfig\.target: unknown target my\.Loss/);
  const badType = base();
  (badType.params as Record<string, unknown>).embed_dim = '4';
  assert.throws(() => instantiate(badType as ConfigNode, at), /model\.params\.first_stage_config\.params\.embed_dim: expected a number, got "4"/);
  const missing = base();
  delete ((missing.params as Record<string, Record<string, unknown>>).ddconfig).z_channels;
  assert.throws(() => instantiate(missing as ConfigNode, at), /ddconfig\.z_channels: required number is missing/);
  const attn = base();
  ((attn.params as Record<string, Record<string, unknown>>).ddconfig).attn_type = 'flash';
  assert.throws(() => instantiate(attn as ConfigNode, at), /ddconfig\.attn_type: expected one of vanilla, linear, none, got "flash"/);
  assert.throws(() => instantiate({ ...base(), extra: 1 } as unknown as ConfigNode, at), /unknown key model\.params\.first_stage_config\.extra beside target/);
  const single = base();
  ((single.params as Record<string, Record<string, unknown>>).ddconfig).double_z = false;
  assert.throws(() => instantiate(single as ConfigNode, at), /double_z must be true/);
});

test('Downsample pads right/bottom only; AttnBlock is single-head attention with C^-1/2 over H·W', () => {
  T.manualSeed(3);
  const b = new Builder();
  const x = T.randn([2, 32, 5, 6]);
  const down = new Downsample(32, true, b);
  const y = down.forward(x);
  assert.deepEqual(y.shape, [2, 32, 2, 3]); // H 5 → pad 6 → 2; W 6 → pad 7 → 3
  const ref = T.conv2d(T.pad(x, [0, 1, 0, 1]), param(down.conv!, 'weight'), param(down.conv!, 'bias'), { stride: 2, padding: 0 });
  assertClose(y.toArray(), ref.toArray(), 1e-6, 'Downsample');

  const C = 32, H = 3, W = 4;
  const blk = new AttnBlock(C, b);
  const xa = T.randn([1, C, H, W]);
  const out = blk.forward(xa).toArray();
  // Naive float64 recomputation from the block's own convs.
  const h = blk.norm.forward(xa);
  const q = blk.q.forward(h).toArray(), k = blk.k.forward(h).toArray(), v = blk.v.forward(h).toArray();
  const N = H * W;
  const o = new Array(C * N).fill(0);
  for (let i = 0; i < N; i++) {
    const w = new Array(N).fill(0);
    for (let j = 0; j < N; j++) for (let c = 0; c < C; c++) w[j] += q[c * N + i] * k[c * N + j] * C ** -0.5;
    const mx = Math.max(...w);
    const e = w.map((z) => Math.exp(z - mx));
    const s = e.reduce((a, z) => a + z, 0);
    for (let c = 0; c < C; c++) for (let j = 0; j < N; j++) o[c * N + i] += (v[c * N + j] * e[j]) / s;
  }
  const proj = blk.proj_out.forward(T.tensor(new Float32Array(o), [1, C, H, W])).toArray();
  const expect = xa.toArray().map((z, i) => z + proj[i]);
  assertClose(out, expect, 1e-5, 'AttnBlock');
});

test('VectorQuantizer2: expanded-distance argmin with first minimum on ties, legacy loss, straight-through gradient', () => {
  const vq = new VectorQuantizer2(4, 2);
  const E = param(vq.embedding, 'weight');
  T.copyInto(E, T.tensor([[1, 0], [1, 0], [0, 1], [-1, -1]]));
  // z rows (b h w c): [1,0] (tie between codes 0 and 1), [0.5,0.5] (tie between 0/1 and 2), [-2,-1], [0,0.9]
  const z = T.requireGrad(T.tensor([[[[1, 0.5], [-2, 0]], [[0, 0.5], [-1, 0.9]]]])); // [B 1, C 2, H 2, W 2]
  const r = vq.forward(z);
  assert.deepEqual(r.indices.toArray(), [0, 0, 3, 2]);
  assert.deepEqual(r.quant.toArray(), [1, 1, -1, 0, 0, 0, -1, 1]);
  // legacy: mean((zq − z)²) + 0.25·mean((zq − z)²) = 1.25·mean((zq − z)²)
  const zf = [[1, 0], [0.5, 0.5], [-2, -1], [0, 0.9]], zq = [[1, 0], [1, 0], [-1, -1], [0, 1]];
  let s = 0;
  zf.forEach((row, i) => row.forEach((v, c) => (s += (zq[i][c] - v) ** 2)));
  assert.ok(Math.abs(r.loss.item() - (1.25 * s) / 8) < 1e-6);
  // Straight-through: ∂Σ(quant·w)/∂z = w.
  const w = T.randn([1, 2, 2, 2], new T.Generator(1));
  T.sum(T.mul(r.quant, w)).backward();
  assertClose(z.grad!.toArray(), w.toArray(), 1e-6, 'straight-through gradient');
  // get_codebook_entry with and without a shape.
  assert.deepEqual(vq.getCodebookEntry(T.tensor([2, 3], undefined, 'int32')).toArray(), [0, 1, -1, -1]);
  assert.deepEqual(vq.getCodebookEntry(T.tensor([0, 2], undefined, 'int32'), [1, 1, 2, 2]).shape, [1, 2, 1, 2]);
});

test('DiagonalGaussianDistribution: chunk order, logvar clamp, sample with given noise, KL and NLL', () => {
  const mean = [0.5, -1, 2, 0], logvar = [0.1, -40, 25, 0];
  const p = T.tensor(new Float32Array([...mean, ...logvar]), [1, 2, 4, 1]);
  const d = new DiagonalGaussianDistribution(p);
  assert.deepEqual(d.mean.toArray(), T.tensor(new Float32Array(mean)).toArray());
  const lv = logvar.map((v) => Math.min(20, Math.max(-30, v)));
  assertClose(d.logvar.toArray(), lv, 1e-7, 'clamped logvar');
  const noise = T.tensor(new Float32Array([1, 2, -1, 0.5]), [1, 1, 4, 1]);
  assertClose(d.sample(noise).toArray(), mean.map((m, i) => m + Math.exp(lv[i] / 2) * [1, 2, -1, 0.5][i]), 1e-6, 'sample');
  const kl = 0.5 * mean.reduce((a, m, i) => a + m * m + Math.exp(lv[i]) - 1 - lv[i], 0);
  assert.ok(Math.abs(d.kl().item() - kl) / kl < 1e-6);
  const x = T.tensor(new Float32Array([0, 0, 0, 0]), [1, 1, 4, 1]);
  const nll = 0.5 * mean.reduce((a, m, i) => a + Math.log(2 * Math.PI) + lv[i] + (0 - m) ** 2 / Math.exp(lv[i]), 0);
  assert.ok(Math.abs(d.nll(x).item() - nll) / nll < 1e-6);
  assert.ok(d.kl(d).item() === 0);
});

test('small real KL and VQ models run end to end (shapes, quantized decode, decodeCode)', () => {
  T.manualSeed(0);
  const dd = { double_z: true, z_channels: 4, resolution: 16, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [8], dropout: 0 };
  const kl = instantiate<AutoencoderKL>({ target: 'ldm.models.autoencoder.AutoencoderKL', params: { embed_dim: 3, lossconfig: { target: 'torch.nn.Identity' }, ddconfig: dd } });
  const x = T.randn([1, 3, 16, 16]);
  T.noGrad(() => {
    const post = kl.encode(x);
    assert.deepEqual(post.mean.shape, [1, 3, 8, 8]);
    assert.deepEqual(kl.decode(post.mode()).shape, [1, 3, 16, 16]);
  });
  assert.equal(kl.decoder.up.length, 2);
  assert.equal(kl.decoder.up[0].upsample, null, 'up.0 is the full-resolution level (no upsample)');
  assert.ok(kl.decoder.up[1].upsample);
  assert.equal(kl.decoder.up[1].attn.length, 2, 'attention at resolution 8 (level 1) after each of the 2 blocks');
  const vqi = instantiate<VQModelInterface>({
    target: 'ldm.models.autoencoder.VQModelInterface',
    params: { embed_dim: 4, n_embed: 16, ddconfig: { ...dd, double_z: false, attn_type: 'none' }, lossconfig: { target: 'torch.nn.Identity' }, monitor: 'val/rec_loss' },
  });
  assert.equal([...vqi.stateDict().keys()].filter((k) => k.includes('attn')).length, 0, 'attn_type none: no attention parameters');
  T.noGrad(() => {
    const h = vqi.encode(x);
    assert.deepEqual(h.shape, [1, 4, 8, 8]);
    const q = vqi.quantize.forward(h);
    assertClose(vqi.decode(h).toArray(), vqi.decode(q.quant, true).toArray(), 1e-6, 'decode quantizes unless forced');
    assertClose(vqi.decodeCode(T.reshape(q.indices, [1, 8, 8])).toArray(), vqi.decode(h).toArray(), 1e-5, 'decodeCode');
  });
  const vq = instantiate<VQModel>({ target: 'ldm.models.autoencoder.VQModel', params: { embed_dim: 4, n_embed: 16, ddconfig: { ...dd, double_z: false }, lossconfig: { target: 'torch.nn.Identity' } } });
  T.noGrad(() => assert.deepEqual(vq.forward(x).dec.shape, [1, 3, 16, 16]));
});

test('a bare {target, params} file and an official model: file build through buildFromConfigFile', (t) => {
  const file = path.resolve(repoRoot, '../shared/golden/vq/config.yaml');
  if (!existsSync(file)) {
    t.skip(`golden fixtures not found at ${file}`);
    return;
  }
  const m = buildFromConfigFile<VQModelInterface>(file, { meta: true });
  assert.ok(m instanceof VQModelInterface);
  assert.equal(m.quantize._nE, 64);
  const weights = path.join(path.dirname(file), 'weights.safetensors');
  assert.throws(() => loadCheckpointInto(m, weights), /cannot load weights into a shape-only \(meta\) build/);
  const real = buildFromConfigFile<VQModelInterface>(file);
  const r = loadCheckpointInto(real, weights);
  assert.deepEqual([r.missing.length, r.unexpected.length, r.mismatched.length], [0, 0, 0]);
  // init_from_ckpt with ignore_keys: the ignored prefix keeps its current values and is reported.
  const other = buildFromConfigFile<VQModelInterface>(file);
  const before = param(other.decoder.conv_out, 'weight').toArray();
  const r2 = initFromCkpt(other, weights, ['decoder.conv_out']);
  assert.deepEqual(r2.ignored.sort(), ['decoder.conv_out.bias', 'decoder.conv_out.weight']);
  assert.deepEqual(r2.missing.sort(), ['decoder.conv_out.bias', 'decoder.conv_out.weight']);
  assert.deepEqual(param(other.decoder.conv_out, 'weight').toArray(), before);
  assert.deepEqual(param(other.encoder.conv_in, 'weight').toArray(), param(real.encoder.conv_in, 'weight').toArray());
});
