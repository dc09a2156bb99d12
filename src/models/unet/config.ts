// UNetModel from a config node's params (`unet_config.params` of an official config), read with types
// checked; every reference parameter is accepted, unknown ones are reported by the targets table.

import { Params } from '../../io/config.js';
import type { UNetBuildOptions } from './build.js';
import { UNetModel } from './unet.js';

export function buildUNet(p: Params, opts: UNetBuildOptions = {}): UNetModel {
  const contextRaw = p.get('context_dim');
  if (Array.isArray(contextRaw)) throw new Error(`${p.path}.context_dim: a list of context dims is not supported by this UNet (one per transformer depth)`);
  // use_checkpoint (gradient checkpointing) only trades memory for time in the reference; use_fp16 is a no-op
  // there too (convert_module_to_f16 is a stub), so both are accepted and have no effect.
  p.ignore('use_checkpoint');
  if (p.bool('use_fp16', false)) throw new Error(`${p.path}.use_fp16: the reference's fp16 path is broken (no-op conversion); this port computes in float32`);
  return new UNetModel(
    {
      image_size: p.has('image_size') ? p.int('image_size') : (p.get('image_size'), undefined),
      in_channels: p.int('in_channels'),
      model_channels: p.int('model_channels'),
      out_channels: p.int('out_channels'),
      num_res_blocks: p.int('num_res_blocks'),
      attention_resolutions: p.ints('attention_resolutions'),
      dropout: p.number('dropout', 0),
      channel_mult: p.ints('channel_mult', [1, 2, 4, 8]),
      conv_resample: p.bool('conv_resample', true),
      dims: p.int('dims', 2),
      num_classes: p.optInt('num_classes'),
      num_heads: p.int('num_heads', -1),
      num_head_channels: p.int('num_head_channels', -1),
      num_heads_upsample: p.int('num_heads_upsample', -1),
      use_scale_shift_norm: p.bool('use_scale_shift_norm', false),
      resblock_updown: p.bool('resblock_updown', false),
      use_new_attention_order: p.bool('use_new_attention_order', false),
      use_spatial_transformer: p.bool('use_spatial_transformer', false),
      transformer_depth: p.int('transformer_depth', 1),
      context_dim: p.optInt('context_dim'),
      n_embed: p.optInt('n_embed'),
      legacy: p.bool('legacy', true),
    },
    opts,
  );
}

/** Build from a plain params object (e.g. a parsed `unet_config.params`); unknown keys are an error. */
export function unetFromParams(params: Record<string, unknown>, opts: UNetBuildOptions = {}): UNetModel {
  const p = new Params(params, 'params', 'ldm.modules.diffusionmodules.openaimodel.UNetModel');
  const m = buildUNet(p, opts);
  p.assertAllUsed();
  return m;
}
