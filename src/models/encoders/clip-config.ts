// FrozenCLIPEmbedder from its config node. The official cond_stage_config names only the Hugging Face model
// (`version`, default openai/clip-vit-large-patch14) whose config.json gives the sizes; a node may carry those
// hyper-parameters itself as `text_config` (beside target/params), otherwise ViT-L/14's are used.

import { ConfigError, Params } from '../../io/config.js';
import { CLIP_VIT_L14_TEXT, FrozenCLIPEmbedder, type ClipTextConfig, type FrozenCLIPEmbedderOptions } from './clip-text.js';

const KNOWN_VERSIONS = new Set(['openai/clip-vit-large-patch14']);

/** A CLIPTextConfig mapping (config.json fields; unknown fields are an error, missing ones take ViT-L/14's values). */
export function parseClipTextConfig(raw: unknown, path: string): ClipTextConfig {
  if (raw === undefined || raw === null) return { ...CLIP_VIT_L14_TEXT };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${path}: expected a mapping of CLIPTextConfig fields`);
  const p = new Params(raw as Record<string, unknown>, path, 'CLIPTextConfig');
  const d = CLIP_VIT_L14_TEXT;
  const c: ClipTextConfig = {
    vocab_size: p.int('vocab_size', d.vocab_size),
    hidden_size: p.int('hidden_size', d.hidden_size),
    intermediate_size: p.int('intermediate_size', d.intermediate_size),
    num_hidden_layers: p.int('num_hidden_layers', d.num_hidden_layers),
    num_attention_heads: p.int('num_attention_heads', d.num_attention_heads),
    max_position_embeddings: p.int('max_position_embeddings', d.max_position_embeddings),
    hidden_act: p.oneOf('hidden_act', ['quick_gelu', 'gelu'] as const, d.hidden_act),
    layer_norm_eps: p.number('layer_norm_eps', d.layer_norm_eps),
  };
  // fields of config.json that do not change the text model's function
  p.ignore('projection_dim', 'initializer_range', 'initializer_factor', 'attention_dropout', 'dropout', 'bos_token_id', 'eos_token_id',
    'pad_token_id', 'model_type', 'torch_dtype', 'transformers_version', 'architectures', '_name_or_path');
  p.assertAllUsed();
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new ConfigError(`${path}.hidden_size: ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`);
  }
  return c;
}

/** cond_stage_config params: version, device (ignored), max_length; `textConfig` = the node's text_config. */
export function buildFrozenCLIPEmbedder(p: Params, textConfig: unknown, opts: FrozenCLIPEmbedderOptions = {}): FrozenCLIPEmbedder {
  p.ignore('device');
  const version = p.string('version', 'openai/clip-vit-large-patch14');
  const maxLength = p.int('max_length', 77);
  const where = p.path.replace(/(^|\.)params$/, '$1text_config');
  if ((textConfig === undefined || textConfig === null) && !KNOWN_VERSIONS.has(version)) {
    throw new ConfigError(`${p.path}.version: ${version} — only openai/clip-vit-large-patch14's sizes are built in; give the model's config.json fields as ${where}`);
  }
  const config = parseClipTextConfig(textConfig, where);
  if (maxLength > config.max_position_embeddings) throw new ConfigError(`${p.path}.max_length: ${maxLength} exceeds the text model's ${config.max_position_embeddings} positions`);
  return new FrozenCLIPEmbedder(config, { clipVocabDir: process.env.LDM_CLIP_VOCAB || undefined, ...opts, maxLength, version });
}
