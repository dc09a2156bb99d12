// Small random-weight LatentDiffusion models with the structure of the official configs (same targets,
// keys, conditioning and first-stage factors; channel counts, depths and codebooks shrunk).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { bytesToUnicode } from '../../src/models/encoders/clip-tokenizer.js';
import { instantiate } from '../../src/loader/targets.js';
import type { ConfigNode } from '../../src/io/config.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { stringify } from 'yaml';

export type TinyKind = 'unconditional' | 'class' | 'text' | 'inpainting' | 'text-inpainting' | 'superres' | 'semantic' | 'churches';

const vq = (attnType?: string) => ({
  target: 'ldm.models.autoencoder.VQModelInterface',
  params: {
    embed_dim: 3, n_embed: 64,
    ddconfig: { double_z: false, z_channels: 3, resolution: 256, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2, 4], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0, ...(attnType ? { attn_type: attnType } : {}) },
    lossconfig: { target: 'torch.nn.Identity' },
  },
});

const kl = (chMult = [1, 2, 4, 4]) => ({
  target: 'ldm.models.autoencoder.AutoencoderKL',
  params: {
    embed_dim: 4, monitor: 'val/rec_loss',
    ddconfig: { double_z: true, z_channels: 4, resolution: 256, in_channels: 3, out_ch: 3, ch: 32, ch_mult: chMult, num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 },
    lossconfig: { target: 'torch.nn.Identity' },
  },
});

const unet = (p: Record<string, unknown>) => ({
  target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel',
  params: { image_size: 64, model_channels: 32, num_res_blocks: 1, ...p },
});

const base = { linear_start: 0.0015, linear_end: 0.0195, num_timesteps_cond: 1, log_every_t: 200, timesteps: 1000, first_stage_key: 'image', image_size: 64, channels: 3, monitor: 'val/loss' };

export function tinyConfig(kind: TinyKind): ConfigNode {
  const ld = (params: Record<string, unknown>) => ({ target: 'ldm.models.diffusion.ddpm.LatentDiffusion', params: { ...base, ...params } });
  switch (kind) {
    case 'unconditional': // celebahq-ldm-vq-4
      return ld({
        cond_stage_key: 'class_label', cond_stage_trainable: false, concat_mode: false,
        unet_config: unet({ in_channels: 3, out_channels: 3, attention_resolutions: [8, 4, 2], channel_mult: [1, 2, 3, 4], num_head_channels: 32 }),
        first_stage_config: vq(), cond_stage_config: '__is_unconditional__',
      });
    case 'churches': // lsun_churches-ldm-kl-8 (scale_by_std: the scale factor is a checkpoint buffer)
      return ld({
        linear_end: 0.0155, loss_type: 'l1', cond_stage_key: 'image', image_size: 32, channels: 4, cond_stage_trainable: false, concat_mode: false, scale_by_std: true,
        unet_config: unet({ image_size: 32, in_channels: 4, out_channels: 4, attention_resolutions: [4, 2], channel_mult: [1, 2, 2], num_heads: 4 }),
        first_stage_config: kl([1, 2, 4]), cond_stage_config: '__is_unconditional__',
      });
    case 'class': // cin256-v2
      return ld({
        cond_stage_key: 'class_label', cond_stage_trainable: true, conditioning_key: 'crossattn', use_ema: false,
        unet_config: unet({ in_channels: 3, out_channels: 3, attention_resolutions: [8, 4, 2], channel_mult: [1, 2, 3, 5], num_head_channels: 32, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32 }),
        first_stage_config: vq(), cond_stage_config: { target: 'ldm.modules.encoders.modules.ClassEmbedder', params: { n_classes: 1001, embed_dim: 32, key: 'class_label' } },
      });
    case 'text': // txt2img-1p4B-eval
      return ld({
        linear_start: 0.00085, linear_end: 0.012, cond_stage_key: 'caption', image_size: 32, channels: 4, cond_stage_trainable: true, conditioning_key: 'crossattn', scale_factor: 0.18215, use_ema: false,
        unet_config: unet({ image_size: 32, in_channels: 4, out_channels: 4, attention_resolutions: [4, 2, 1], channel_mult: [1, 2, 4, 4], num_heads: 8, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32 }),
        first_stage_config: kl(), cond_stage_config: { target: 'ldm.modules.encoders.modules.BERTEmbedder', params: { n_embed: 32, n_layer: 1, vocab_size: 64 } },
      });
    case 'inpainting': // models/ldm/inpainting_big
      return ld({
        linear_end: 0.0205, loss_type: 'l1', cond_stage_key: 'masked_image', concat_mode: true,
        unet_config: unet({ in_channels: 7, out_channels: 3, attention_resolutions: [8, 4, 2], channel_mult: [1, 2, 3, 4], num_head_channels: 32 }),
        first_stage_config: vq('none'), cond_stage_config: '__is_first_stage__',
      });
    case 'text-inpainting': // SD v1 inpainting (v1-inpainting-inference.yaml): f = 8, a CLIP text encoder with the byte-alphabet vocab (tinyClipVocab)
      return {
        target: 'ldm.models.diffusion.ddpm.LatentInpaintDiffusion',
        params: {
          ...base, linear_start: 0.00085, linear_end: 0.012, first_stage_key: 'jpg', cond_stage_key: 'txt', image_size: 8, channels: 4,
          cond_stage_trainable: false, conditioning_key: 'hybrid', scale_factor: 0.18215, use_ema: false, finetune_keys: null,
          unet_config: unet({ image_size: 8, in_channels: 9, out_channels: 4, attention_resolutions: [2, 1], channel_mult: [1, 2], num_heads: 2, use_spatial_transformer: true, transformer_depth: 1, context_dim: 32 }),
          first_stage_config: kl(),
          cond_stage_config: {
            target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder',
            text_config: { vocab_size: 514, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 },
          },
        },
      };
    case 'superres': // models/ldm/bsr_sr
      return ld({
        linear_end: 0.0155, cond_stage_key: 'LR_image', concat_mode: true, cond_stage_trainable: false,
        unet_config: unet({ in_channels: 6, out_channels: 3, attention_resolutions: [16, 8], channel_mult: [1, 2, 2, 4], num_head_channels: 32 }),
        first_stage_config: vq(), cond_stage_config: { target: 'torch.nn.Identity' },
      });
    case 'semantic': // models/ldm/semantic_synthesis256
      return ld({
        linear_end: 0.0205, loss_type: 'l1', cond_stage_key: 'segmentation', concat_mode: true, cond_stage_trainable: true,
        unet_config: unet({ in_channels: 6, out_channels: 3, attention_resolutions: [32, 16, 8], channel_mult: [1, 2, 4], num_head_channels: 32 }),
        first_stage_config: vq(), cond_stage_config: { target: 'ldm.modules.encoders.modules.SpatialRescaler', params: { n_stages: 2, in_channels: 182, out_channels: 3 } },
      });
  }
}

/** A tiny model with weights drawn from a seeded generator; its zero-initialised layers are randomised too. */
export function tinyModel(kind: TinyKind, seed = 1): LatentDiffusion {
  const gen = new T.Generator(seed);
  const m = instantiate<LatentDiffusion>(tinyConfig(kind), 'model', { gen });
  // zero_module() outputs would make every sample trivial: give them small random values.
  for (const [, p] of m.namedParameters()) {
    const d = p.data as Float32Array;
    if (d.every((v) => v === 0)) for (let i = 0; i < d.length; i++) d[i] = 0.05 * gen.normal();
  }
  return m.eval();
}

/** A tiny model on disk: config.yaml + model.safetensors in a new folder under `parent`. */
export function tinyModelDir(kind: TinyKind, parent = tmpdir()): string {
  const dir = mkdtempSync(path.join(parent, `${kind}-`));
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: tinyConfig(kind) }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tinyModel(kind).stateDict());
  return dir;
}

/** A vocab.txt for the tiny BERT (ids < 64). */
export function tinyVocab(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ldm-vocab-'));
  const words = ['[PAD]', ...Array.from({ length: 99 }, (_, i) => `[unused${i}]`)].slice(0, 40);
  words.push('[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'painting', 'of', 'fox', 'cat', 'red', 'blue', '##s');
  const file = path.join(dir, 'vocab.txt');
  writeFileSync(file, words.join('\n') + '\n');
  return file;
}

/** CLIP tokenizer files (vocab.json, merges.txt) with just the byte alphabet (vocab 514): every character is a token. Returns the folder. */
export function tinyClipVocab(dir = mkdtempSync(path.join(tmpdir(), 'ldm-clipvocab-'))): string {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((b, i) => ((vocab[b] = i), (vocab[`${b}</w>`] = 256 + i)));
  vocab['<|startoftext|>'] = 512;
  vocab['<|endoftext|>'] = 513;
  writeFileSync(path.join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(path.join(dir, 'merges.txt'), '#version: 0.2\n');
  return dir;
}

export function pixelStats(data: Uint8Array): { min: number; max: number; distinct: number } {
  let min = 255, max = 0;
  const seen = new Set<number>();
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    seen.add(v);
  }
  return { min, max, distinct: seen.size };
}
