// A tiny class-conditional model laid out as an embedded model (models/<name>/{config.yaml,
// model.safetensors, model.json}) in a temporary folder: random weights, 32×32 images, 10 classes + a
// "no class" label (about 0.3 M parameters), so the registry, the CLI and the API can be tested without the shipped models.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import type { ConfigNode } from '../../src/io/config.js';

export function tinyDigitsConfig(): ConfigNode {
  return {
    target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
    params: {
      linear_start: 0.0015, linear_end: 0.0195, timesteps: 1000, first_stage_key: 'image', cond_stage_key: 'class_label',
      image_size: 8, channels: 3, cond_stage_trainable: true, conditioning_key: 'crossattn', use_ema: false, monitor: 'val/loss',
      unet_config: {
        target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel',
        params: {
          image_size: 8, in_channels: 3, out_channels: 3, model_channels: 32, num_res_blocks: 1, attention_resolutions: [2],
          channel_mult: [1, 2], num_head_channels: 32, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32,
        },
      },
      first_stage_config: {
        target: 'ldm.models.autoencoder.VQModelInterface',
        params: {
          embed_dim: 3, n_embed: 32,
          ddconfig: { double_z: false, z_channels: 3, resolution: 32, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 },
          lossconfig: { target: 'torch.nn.Identity' },
        },
      },
      cond_stage_config: { target: 'ldm.modules.encoders.modules.ClassEmbedder', params: { n_classes: 11, embed_dim: 32, key: 'class_label' } },
    },
  };
}

/** Writes models/<name>/ under a new temporary folder; returns that models folder. */
export function tinyModelsDir(name = 'digits'): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ldm-models-'));
  const dir = path.join(root, name);
  mkdirSync(dir);
  const cfg = tinyDigitsConfig();
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: cfg }));
  const gen = new T.Generator(3);
  const m = instantiate<LatentDiffusion>(cfg, 'model', { gen });
  for (const [, p] of m.namedParameters()) {
    const d = p.data as Float32Array;
    if (d.every((v) => v === 0)) for (let i = 0; i < d.length; i++) d[i] = 0.05 * gen.normal();
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), m.stateDict());
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
    description: 'tiny random-weight digits model (tests)', task: 'class', classes: 10,
    classNames: Array.from({ length: 10 }, (_, i) => String(i)), imageSize: 32, defaults: { steps: 4, scale: 3 }, default: true,
  }));
  return root;
}
