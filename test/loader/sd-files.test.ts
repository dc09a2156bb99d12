// Stable Diffusion v1 weight files as they come: float32, float16 and bfloat16 safetensors and torch.save
// `.ckpt` files (float32, float16, bfloat16 storages) of one SD-structured model load to exactly the float32
// values their rounding gives, and sample through `ldm sample`; v1-inpainting-inference.yaml builds the
// 9-channel hybrid model with LatentInpaintDiffusion's own params read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { readYaml } from '../../src/io/config.js';
import { floatsToHalfBytes } from '../../src/io/half.js';
import { readImage } from '../../src/io/image.js';
import { halfToFloat, readSafetensors, serializeRaw, writeFileAtomic, writeSafetensors, type RawEntry } from '../../src/io/safetensors.js';
import { inpaintConcat } from '../../src/loader/inpaint-diffusion.js';
import { loadModel } from '../../src/loader/model.js';
import { buildFromConfigFile, instantiate } from '../../src/loader/targets.js';
import { tinyClipVocab } from '../tasks/helpers.js';
import { runCli } from '../cli/run-cli.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sdDir = path.resolve(repoRoot, '../shared/reference/configs/configs/stable-diffusion');
const keyDir = path.resolve(repoRoot, '../shared/reference/keys');
const haveRef = existsSync(path.join(sdDir, 'v1-inference.yaml')) && existsSync(path.join(sdDir, 'v1-inpainting-inference.yaml')) && existsSync(path.join(keyDir, 'sd_v1.tsv'));
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-sdfiles-'));
const shapeStr = (s: readonly number[]) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`;

test('v1-inpainting-inference.yaml builds the 9-channel hybrid model: sd-v1 keys, input conv (320, 9, 3, 3)', { skip: haveRef ? false : `reference configs not found under ${sdDir}` }, () => {
  const m = buildFromConfigFile<LatentDiffusion>(path.join(sdDir, 'v1-inpainting-inference.yaml'), { meta: true });
  assert.ok(m instanceof LatentDiffusion);
  assert.equal(m.conditioningKey, 'hybrid');
  assert.equal(m.model.diffusion_model.config.in_channels, 9);
  assert.deepEqual(inpaintConcat(m), { concatKeys: ['mask', 'masked_image'], maskedImageKey: 'masked_image' });
  // the same keys as sd-v1-4.ckpt; only the UNet's first convolution is wider (4 latent + 1 mask + 4 masked-image channels)
  const ref = new Map<string, string>();
  for (const f of ['sd_v1.tsv', 'clip_vit_l14_text.tsv']) for (const line of readFileSync(path.join(keyDir, f), 'utf8').trim().split('\n')) {
    const [k, s] = line.split('\t');
    ref.set(k, s);
  }
  ref.delete('cond_stage_model.transformer.text_model.embeddings.position_ids');
  const ours = new Map([...m.stateDict()].map(([k, t]) => [k, shapeStr(t.shape)]));
  assert.deepEqual([...ours.keys()].sort(), [...ref.keys()].sort());
  const differ = [...ours].filter(([k, s]) => ref.get(k) !== s);
  assert.deepEqual(differ, [['model.diffusion_model.input_blocks.0.0.weight', '(320, 9, 3, 3)']]);
  // a plain v1-inference build has no concat recipe
  assert.equal(inpaintConcat(buildFromConfigFile<LatentDiffusion>(path.join(sdDir, 'v1-inference.yaml'), { meta: true })), undefined);
});

test('LatentInpaintDiffusion: a masked_image_key outside concat_keys is named with its config path', { skip: haveRef ? false : 'reference configs not found' }, () => {
  const doc = readYaml(path.join(sdDir, 'v1-inpainting-inference.yaml')) as { model: { params: Record<string, unknown> } };
  doc.model.params.concat_keys = ['mask', 'image'];
  assert.throws(() => instantiate(doc.model as never, 'model', { meta: true }), /model\.params\.masked_image_key: "masked_image" is not one of concat_keys \[mask, image\]/);
  doc.model.params.concat_keys = 'mask';
  assert.throws(() => instantiate(doc.model as never, 'model', { meta: true }), /model\.params\.concat_keys: expected a list of input names, got "mask"/);
});

// ---- one SD-structured model, written in every precision ---------------------------------------------------

/** v1-inference.yaml with small widths (same targets and every other setting). */
function smallSdConfig(): Record<string, any> {
  const doc = readYaml(path.join(sdDir, 'v1-inference.yaml')) as { model: { params: Record<string, any> } };
  const p = doc.model.params;
  p.image_size = 8;
  Object.assign(p.unet_config.params, { model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, num_heads: 2, context_dim: 32 });
  Object.assign(p.first_stage_config.params.ddconfig, { ch: 32, ch_mult: [1, 1, 2, 2], num_res_blocks: 1, resolution: 64 });
  p.cond_stage_config.text_config = { vocab_size: 514, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
  return doc;
}

/** float32 → bfloat16 bits, round to nearest even (torch's Tensor.bfloat16()); values here are finite. */
function bf16Bytes(a: Float32Array): Uint8Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

const python = '/usr/bin/python3';
const haveTorch = existsSync(python) && spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

test('SD files in float32 / float16 / bfloat16 safetensors and torch .ckpt load to their exact rounded values and sample', { skip: haveRef ? false : 'reference configs not found' }, async (t) => {
  const dir = mkdtempSync(path.join(tmp, 'sd-'));
  const cfg = smallSdConfig();
  const config = path.join(dir, 'v1-small.yaml');
  writeFileSync(config, stringify(cfg));
  const built = instantiate<LatentDiffusion>(cfg.model, 'model', { gen: new T.Generator(5) });
  // the schedule buffers (betas, alphas_cumprod, …) are the only keys without a module path
  const schedule = (k: string) => !k.includes('.');
  // zero-initialised layers redrawn, so that every weight carries information through the rounding
  const gen = new T.Generator(9);
  const weights = new Map<string, T.Tensor>();
  for (const [k, v] of built.stateDict()) weights.set(k, v.dtype === 'float32' && !schedule(k) ? T.add(v, T.mulScalar(T.randn(v.shape, gen), 0.05)) : v);
  weights.set('cond_stage_model.transformer.text_model.embeddings.position_ids', T.tensor(Array.from({ length: 77 }, (_, i) => i), [1, 77], 'int64'));
  const f32 = path.join(dir, 'sd-fp32.safetensors');
  writeSafetensors(f32, weights);
  // half files: every network weight rounded, the schedule buffers kept in float32 (as pruned fp16 files)
  const half = (enc: (a: Float32Array) => Uint8Array, dtype: string) =>
    serializeRaw([...weights].map(([k, v]): [string, RawEntry] => {
      const d = T.contiguousData(v);
      if (v.dtype !== 'float32' || schedule(k)) return [k, { dtype: v.dtype === 'int64' ? 'I64' : 'F32', shape: v.shape, data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) }];
      return [k, { dtype, shape: v.shape, data: enc(d as Float32Array) }];
    }));
  const files: Record<string, { file: string; round: (a: Float32Array) => Float32Array }> = {
    'fp32.safetensors': { file: f32, round: (a) => a },
    'fp16.safetensors': { file: path.join(dir, 'sd-fp16.safetensors'), round: (a) => halfToFloat(floatsToHalfBytes(a), false) },
    'bf16.safetensors': { file: path.join(dir, 'sd-bf16.safetensors'), round: (a) => halfToFloat(bf16Bytes(a), true) },
  };
  writeFileAtomic(files['fp16.safetensors'].file, half(floatsToHalfBytes, 'F16'));
  writeFileAtomic(files['bf16.safetensors'].file, half(bf16Bytes, 'BF16'));
  if (haveTorch) {
    // torch.save({"state_dict": …, "global_step": 0}) as the CompVis files are, from the float32 file (one python run)
    const kinds = [['fp32.ckpt', 'float32'], ['fp16.ckpt', 'float16'], ['bf16.ckpt', 'bfloat16']] as const;
    const r = spawnSync(python, ['-c', `import sys, torch; sys.path.insert(0, ${JSON.stringify(path.join(repoRoot, 'bench'))})
from sd_sample_torch import read_state_dict
w = read_state_dict(${JSON.stringify(f32)})
for out, dt in ${JSON.stringify(kinds.map(([name, dt]) => [path.join(dir, `sd-${name}`), dt]))}:
    sd = {k: (v.to(getattr(torch, dt)) if v.is_floating_point() and "." in k else v) for k, v in w.items()}
    torch.save({"state_dict": sd, "global_step": 0}, out)`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const [name] of kinds) files[name] = { file: path.join(dir, `sd-${name}`), round: files[name.replace('ckpt', 'safetensors')].round };
  } else t.diagnostic(`no ${python} with torch: the .ckpt files are not made`);

  const expected = new Map([...weights].map(([k, v]) => [k, T.contiguousData(v)]));
  for (const [name, { file, round }] of Object.entries(files)) {
    const m = loadModel(file, { config });
    assert.deepEqual(m.report.ignored, ['cond_stage_model.transformer.text_model.embeddings.position_ids'], name);
    let checked = 0;
    for (const [k, v] of m.model.stateDict()) {
      const want = expected.get(k)!;
      const got = T.contiguousData(v);
      const exp = v.dtype === 'float32' && !schedule(k) ? round(want as Float32Array) : want;
      assert.deepEqual(got, exp, `${name}: ${k}`);
      checked++;
    }
    assert.equal(checked, expected.size - 1, name);
  }
  // the rounding is real: fp16 and bf16 differ from float32 and from each other
  const k0 = 'model.diffusion_model.input_blocks.0.0.weight';
  const w0 = expected.get(k0) as Float32Array;
  assert.notDeepEqual(files['fp16.safetensors'].round(w0), w0);
  assert.notDeepEqual(files['bf16.safetensors'].round(w0), files['fp16.safetensors'].round(w0));

  // every file samples through the CLI; the same weights in another container give the same latents
  const vocabDir = mkdtempSync(path.join(dir, 'vocab-'));
  tinyClipVocab(vocabDir);
  const latents: Record<string, Float32Array> = {};
  for (const [name, { file }] of Object.entries(files)) {
    const out = path.join(dir, `out-${name}`);
    const r = await runCli(['sample', '--config', config, '--ckpt', file, '--vocab-dir', vocabDir, '--prompt', 'a red fox', '--negative-prompt', 'blurry',
      '--sampler', 'dpm++2m', '--steps', '3', '--H', '64', '--W', '64', '--seed', '3', '--out', out, '--save-latents', `${out}.safetensors`, '--quiet']);
    assert.equal(r.code, 0, `${name}: ${r.out}`);
    const pngs = readdirSync(out).filter((f) => f.endsWith('.png'));
    assert.equal(pngs.length, 1, name);
    const im = readImage(path.join(out, pngs[0]));
    assert.deepEqual([im.width, im.height], [64, 64]);
    latents[name] = T.contiguousData(readSafetensors(`${out}.safetensors`).tensors.get('samples')!) as Float32Array;
    assert.ok(latents[name].every(Number.isFinite), name);
  }
  for (const p of ['fp16', 'bf16', 'fp32']) if (latents[`${p}.ckpt`]) assert.deepEqual(latents[`${p}.ckpt`], latents[`${p}.safetensors`], `${p}: .ckpt and .safetensors`);
  const rel = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / b.reduce((s, v) => s + v * v, 0));
  const e16 = rel(latents['fp16.safetensors'], latents['fp32.safetensors']), eb16 = rel(latents['bf16.safetensors'], latents['fp32.safetensors']);
  assert.ok(e16 > 0 && e16 < 0.05, `fp16 latents vs fp32: rel. L2 ${e16}`);
  assert.ok(eb16 > e16 && eb16 < 0.2, `bf16 latents vs fp32: rel. L2 ${eb16} (fp16: ${e16})`);
});
