// Tiny training configs for the trainer tests: MNIST digits (32×32×1, a handful of training images), an
// AutoencoderKL with f = 4 and a class-conditional LatentDiffusion on its 8×8×3 latents, both with the
// reference configs' layout (model / data / lightning / training).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { TrainOptions } from '../../src/train/setup.js';

export const tmpRoot = (): string => mkdtempSync(path.join(tmpdir(), 'ldm-train-'));

const ddconfig = { double_z: true, z_channels: 3, resolution: 32, in_channels: 1, out_ch: 1, ch: 32, ch_mult: [1, 1, 1], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 };

/** `train` digits for training (the rest of the 10,000 held out), batch `batch`. */
function data(train: number, batch: number) {
  const held = 10000 - train;
  return {
    target: 'main.DataModuleFromConfig',
    params: {
      batch_size: batch,
      train: { target: 'ldm.data.mnist.MNISTTrain', params: { size: 32, held_out: held } },
      validation: { target: 'ldm.data.mnist.MNISTValidation', params: { size: 32, held_out: held } },
    },
  };
}

export function aeConfig(o: { train?: number; batch?: number; steps?: number; discStart?: number; lr?: number } = {}) {
  return {
    model: {
      base_learning_rate: o.lr ?? 2.5e-4,
      target: 'ldm.models.autoencoder.AutoencoderKL',
      params: {
        embed_dim: 3,
        lossconfig: { target: 'ldm.modules.losses.LPIPSWithDiscriminator', params: { disc_start: o.discStart ?? 3, kl_weight: 1e-6, disc_weight: 0.5, perceptual_weight: 1.0, disc_in_channels: 1, disc_num_layers: 1 } },
        ddconfig,
      },
    },
    data: data(o.train ?? 8, o.batch ?? 2),
    lightning: { trainer: { max_steps: o.steps ?? 6, benchmark: true } },
    training: { ckpt_every: 0, keep_last: 2, image_every: 0, max_images: 4 },
  };
}

export function ldmConfig(o: { train?: number; batch?: number; steps?: number; lr?: number; aeCkpt?: string | null; accumulate?: number; clip?: number } = {}) {
  return {
    model: {
      base_learning_rate: o.lr ?? 2.5e-4,
      target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
      params: {
        linear_start: 0.0015, linear_end: 0.0195, timesteps: 1000, first_stage_key: 'image', cond_stage_key: 'class_label',
        image_size: 8, channels: 3, cond_stage_trainable: true, conditioning_key: 'crossattn', scale_by_std: true, use_ema: true,
        unet_config: {
          target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel',
          params: { image_size: 8, in_channels: 3, out_channels: 3, model_channels: 32, attention_resolutions: [2], num_res_blocks: 1, channel_mult: [1, 2], num_head_channels: 16, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32 },
        },
        first_stage_config: { target: 'ldm.models.autoencoder.AutoencoderKL', params: { embed_dim: 3, ckpt_path: o.aeCkpt ?? null, ddconfig, lossconfig: { target: 'torch.nn.Identity' } } },
        cond_stage_config: { target: 'ldm.modules.encoders.modules.ClassEmbedder', params: { embed_dim: 32, n_classes: 11, key: 'class_label' } },
      },
    },
    data: data(o.train ?? 8, o.batch ?? 4),
    lightning: { trainer: { max_steps: o.steps ?? 8, accumulate_grad_batches: o.accumulate ?? 1, ...(o.clip ? { gradient_clip_val: o.clip } : {}) } },
    training: { ckpt_every: 0, keep_last: 2, image_every: 0, max_images: 10, cond_drop_prob: 0.25, uncond_label: 10, sample_steps: 4, sample_scale: 2 },
  };
}

export function writeConfig(dir: string, name: string, doc: unknown): string {
  const f = path.join(dir, `${name}.yaml`);
  writeFileSync(f, stringify(doc));
  return f;
}

/** Options for a quiet in-test run, collecting what the trainer prints. */
export function quiet(lines: string[], o: TrainOptions): TrainOptions {
  return { quiet: true, tty: false, log: (s) => void lines.push(s), ...o };
}

/** Every tensor of a safetensors file as raw bytes (for bit-exact comparisons). */
export function tensorBytes(file: string): Map<string, Uint8Array> {
  const f = readSafetensors(file);
  const out = new Map<string, Uint8Array>();
  for (const [k, t] of f.tensors) {
    const d = t.data as unknown as ArrayBufferView;
    out.set(k, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
  }
  return out;
}

export function assertSameTensors(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>, what: string): number {
  if (a.size !== b.size) throw new Error(`${what}: ${a.size} vs ${b.size} tensors`);
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w) throw new Error(`${what}: ${k} missing in the second file`);
    if (v.length !== w.length || !v.every((x, i) => x === w[i])) throw new Error(`${what}: ${k} differs`);
  }
  return a.size;
}
