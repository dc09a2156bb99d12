// Stable Diffusion v1 from its config: the model v1-inference.yaml builds has exactly sd-v1-4.ckpt's keys and
// shapes (a shape-only build of the real 1.07 B-parameter model), and a small SD-like model (same classes,
// tiny widths) runs text-to-image through `ldm sample` with a negative prompt and DPM++ 2M Karras.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { readPngText, readImage } from '../../src/io/image.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { buildFromConfigFile, instantiate } from '../../src/loader/targets.js';
import { FrozenCLIPEmbedder } from '../../src/models/encoders/clip-text.js';
import { tinyClipVocab } from '../tasks/helpers.js';
import { runCli } from '../cli/run-cli.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const reference = path.resolve(repoRoot, '../shared/reference');
const sdConfig = path.join(reference, 'configs/configs/stable-diffusion/v1-inference.yaml');
const keyFiles = ['sd_v1.tsv', 'clip_vit_l14_text.tsv'].map((f) => path.join(reference, 'keys', f));
const haveRef = existsSync(sdConfig) && keyFiles.every((f) => existsSync(f));

const shapeStr = (s: readonly number[]) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`;

test('v1-inference.yaml builds UNet + VAE + CLIP with exactly the keys and shapes of sd-v1-4.ckpt', { skip: haveRef ? false : `reference configs/keys not found under ${reference}` }, () => {
  const m = buildFromConfigFile<LatentDiffusion>(sdConfig, { meta: true });
  assert.ok(m instanceof LatentDiffusion && m.cond_stage_model instanceof FrozenCLIPEmbedder);
  const ours = new Map([...m.stateDict()].map(([k, t]) => [k, shapeStr(t.shape)]));
  const ref = new Map<string, string>();
  for (const f of keyFiles) for (const line of readFileSync(f, 'utf8').trim().split('\n')) {
    const [k, s] = line.split('\t');
    ref.set(k, s);
  }
  // the one file key without a module tensor: the CLIP position index buffer (ignored on load)
  assert.deepEqual([...ref.keys()].filter((k) => !ours.has(k)), ['cond_stage_model.transformer.text_model.embeddings.position_ids']);
  assert.deepEqual([...ours.keys()].filter((k) => !ref.has(k)), []);
  for (const [k, s] of ours) assert.equal(s, ref.get(k), k);
  let unet = 0;
  for (const [k, t] of m.stateDict()) if (k.startsWith('model.diffusion_model.')) unet += t.size;
  assert.equal(unet, 859_520_964);
  assert.equal(m.config.conditioning_key, 'crossattn');
  assert.equal(m.scaleFactor, 0.18215);
});

// ---- a small SD-like model end to end ------------------------------------------------------------------

const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-sd-'));

function tinySdConfig() {
  return {
    model: {
      base_learning_rate: 1e-4,
      target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
      params: {
        linear_start: 0.00085, linear_end: 0.012, num_timesteps_cond: 1, log_every_t: 200, timesteps: 1000, first_stage_key: 'jpg', cond_stage_key: 'txt',
        image_size: 8, channels: 4, cond_stage_trainable: false, conditioning_key: 'crossattn', monitor: 'val/loss_simple_ema', scale_factor: 0.18215, use_ema: false,
        unet_config: {
          target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel',
          params: { image_size: 32, in_channels: 4, out_channels: 4, model_channels: 32, attention_resolutions: [4, 2, 1], num_res_blocks: 1, channel_mult: [1, 2], num_heads: 2, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32, use_checkpoint: true, legacy: false },
        },
        first_stage_config: {
          target: 'ldm.models.autoencoder.AutoencoderKL',
          params: {
            embed_dim: 4, monitor: 'val/rec_loss',
            ddconfig: { double_z: true, z_channels: 4, resolution: 64, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 1, 2, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 },
            lossconfig: { target: 'torch.nn.Identity' },
          },
        },
        cond_stage_config: {
          target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder',
          text_config: { vocab_size: 514, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
        },
      },
    },
  };
}

const ldm = (...args: string[]) => runCli(args);

test('a small SD-like model: ldm sample --prompt --negative-prompt --sampler dpm++2m-karras writes a PNG', async () => {
  const cfg = tinySdConfig();
  const dir = mkdtempSync(path.join(tmp, 'sd-'));
  const config = path.join(dir, 'v1-tiny.yaml');
  writeFileSync(config, stringify(cfg));
  const model = instantiate<LatentDiffusion>(cfg.model, 'model', { gen: new T.Generator(3) });
  // the CLIP text model saved as sd-v1-4.ckpt has it (int64 position_ids)
  // zero_module() leaves the attention projections and output convs at 0, so the prompt would not matter: redraw them
  const gen = new T.Generator(11);
  const sd = new Map([...model.stateDict()].map(([k, t]) => [k, t.dtype === 'float32' && t.toArray().every((v) => v === 0) && !/(^|\.)bias$/.test(k) ? T.mulScalar(T.randn(t.shape, gen), 0.1) : t] as [string, T.Tensor]));
  sd.set('cond_stage_model.transformer.text_model.embeddings.position_ids', T.tensor(Array.from({ length: 77 }, (_, i) => i), [1, 77], 'int64'));
  const ckpt = path.join(dir, 'sd-tiny.safetensors');
  writeSafetensors(ckpt, sd);
  const vocabDir = tinyClipVocab(mkdtempSync(path.join(tmp, 'clipvocab-')));
  const run = (name: string, negative: string) =>
    ldm('sample', '--config', config, '--ckpt', ckpt, '--vocab-dir', vocabDir, '--prompt', 'a red fox', '--negative-prompt', negative,
      '--sampler', 'dpm++2m-karras', '--steps', '4', '--scale', '7.5', '--H', '64', '--W', '64', '--seed', '5', '--out', path.join(dir, name), '--save-latents', path.join(dir, `${name}.safetensors`), '--quiet');
  const a = await run('a', 'blurry');
  assert.equal(a.code, 0, a.out);
  const pngs = readdirSync(path.join(dir, 'a')).filter((f) => f.endsWith('.png'));
  assert.equal(pngs.length, 1);
  const file = path.join(dir, 'a', pngs[0]);
  const im = readImage(file);
  assert.deepEqual([im.width, im.height], [64, 64]);
  const meta = JSON.parse(readPngText(file).parameters);
  assert.equal(meta.sampler, 'dpm++2m-karras');
  assert.equal(meta.negative_prompt, 'blurry');
  assert.equal(meta.steps, 4);
  // the negative prompt is the unconditional input: another one changes the picture, the same one does not
  const b = await run('b', 'blurry');
  const c = await run('c', 'sharp');
  const lat = (d: string) => Array.from(readSafetensors(path.join(dir, `${d}.safetensors`)).tensors.get('samples')!.toArray());
  assert.deepEqual(lat('b'), lat('a'));
  const la = lat('a'), lc = lat('c');
  assert.ok(la.some((v, i) => Math.abs(v - lc[i]) > 1e-4 * (1 + Math.abs(v))), 'another negative prompt gives other latents');
  // wrong inputs are named before any work
  const bad = await ldm('sample', '--config', config, '--ckpt', ckpt, '--vocab-dir', vocabDir, '--prompt', 'x', '--schedule', 'cosine', '--out', path.join(dir, 'x'));
  assert.equal(bad.code, 2);
  assert.match(bad.out, /--schedule must be one of default, karras, exponential/);
  const noVocab = await ldm('sample', '--config', config, '--ckpt', ckpt, '--vocab-dir', path.join(dir, 'nowhere'), '--prompt', 'x', '--out', path.join(dir, 'y'));
  assert.equal(noVocab.code, 2);
  assert.match(noVocab.out, /--vocab-dir: folder .*nowhere does not exist/);
});
