// Conditioning encoders from config params (`cond_stage_config.params`), read with types checked.

import { Params } from '../../io/config.js';
import type { BuildOptions } from '../../nn/build.js';
import { BERTEmbedder, ClassEmbedder, SpatialRescaler, TransformerEmbedder, type BERTEmbedderOptions } from './modules.js';

export function buildClassEmbedder(p: Params, opts: BuildOptions = {}): ClassEmbedder {
  return new ClassEmbedder(p.int('embed_dim'), p.int('n_classes', 1000), p.string('key', 'class'), opts);
}

/** The tokenizer's vocab.txt comes from opts.vocabFile or the LDM_BERT_VOCAB environment variable. */
export function buildBERTEmbedder(p: Params, opts: BERTEmbedderOptions = {}): BERTEmbedder {
  p.ignore('device');
  return new BERTEmbedder(p.int('n_embed'), p.int('n_layer'), {
    vocabFile: process.env.LDM_BERT_VOCAB || undefined,
    ...opts,
    vocabSize: p.int('vocab_size', 30522),
    maxSeqLen: p.int('max_seq_len', 77),
    useTokenizer: p.bool('use_tokenizer', true),
    embeddingDropout: p.number('embedding_dropout', 0),
  });
}

export function buildTransformerEmbedder(p: Params, opts: BuildOptions = {}): TransformerEmbedder {
  p.ignore('device');
  return new TransformerEmbedder(p.int('n_embed'), p.int('n_layer'), p.int('vocab_size'), p.int('max_seq_len', 77), opts);
}

export function buildSpatialRescaler(p: Params, opts: BuildOptions = {}): SpatialRescaler {
  return new SpatialRescaler(
    p.int('n_stages', 1), p.oneOf('method', ['nearest', 'bilinear'] as const, 'bilinear'), p.number('multiplier', 0.5),
    p.int('in_channels', 3), p.optInt('out_channels'), p.bool('bias', false), opts,
  );
}

const PREFIX = 'ldm.modules.encoders.modules.';

/** Build an encoder from its class name and a plain params object; unknown keys are an error. */
export function encoderFromParams(name: 'ClassEmbedder', params: Record<string, unknown>, opts?: BuildOptions): ClassEmbedder;
export function encoderFromParams(name: 'BERTEmbedder', params: Record<string, unknown>, opts?: BERTEmbedderOptions): BERTEmbedder;
export function encoderFromParams(name: 'TransformerEmbedder', params: Record<string, unknown>, opts?: BuildOptions): TransformerEmbedder;
export function encoderFromParams(name: 'SpatialRescaler', params: Record<string, unknown>, opts?: BuildOptions): SpatialRescaler;
export function encoderFromParams(name: string, params: Record<string, unknown>, opts: BERTEmbedderOptions = {}): unknown {
  const p = new Params(params, 'params', PREFIX + name);
  const build = { ClassEmbedder: buildClassEmbedder, BERTEmbedder: buildBERTEmbedder, TransformerEmbedder: buildTransformerEmbedder, SpatialRescaler: buildSpatialRescaler }[name];
  if (!build) throw new Error(`encoderFromParams: unknown encoder ${name}`);
  const m = build(p, opts);
  p.assertAllUsed();
  return m;
}
