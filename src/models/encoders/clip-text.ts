// SD v1's text conditioning, ldm/modules/encoders/modules.py FrozenCLIPEmbedder: the CLIP text transformer
// (transformers' CLIPTextModel, openai/CLIP clip/model.py's text tower) in the Hugging Face layout that SD
// checkpoints store under `cond_stage_model.transformer.text_model.*`, fed by the CLIP BPE tokenizer.
//
//   x = token_embedding[ids] + position_embedding[0..n−1]
//   per layer (pre-norm):  x += out_proj(causal_attention(layer_norm1(x)))      (position i sees 0..i)
//                          x += fc2(quick_gelu(fc1(layer_norm2(x))))              quick_gelu = x·σ(1.702x)
//   out = final_layer_norm(x)   — last_hidden_state for every position (no pooling, no projection)
// Attention: q, k, v projections with bias, heads of width/heads, scale head_dim^−½; LayerNorm eps 1e-5.
// The checkpoint's `embeddings.position_ids` buffer (0..76) is not a parameter here: positions are 0..n−1.

import * as T from '../../engine/index.js';
import { Layer, Module, ModuleList } from '../../nn/index.js';
import { Builder, type BuildOptions } from '../../nn/build.js';
import { mergeHeads, splitHeads } from '../unet/transformer.js';
import { ClipTokenizer } from './clip-tokenizer.js';

/** The hyper-parameters of transformers' CLIPTextConfig that the text model uses. */
export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: 'quick_gelu' | 'gelu';
  layer_norm_eps: number;
}

/** openai/clip-vit-large-patch14's text config (SD v1's FrozenCLIPEmbedder default). */
export const CLIP_VIT_L14_TEXT: ClipTextConfig = {
  vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
};

export function quickGelu(x: T.Tensor): T.Tensor {
  return T.mul(x, T.sigmoid(T.mulScalar(x, 1.702)));
}

/** Additive causal mask [n, n]: 0 on and below the diagonal, −∞ above. */
export function causalMask(n: number): T.Tensor {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -Infinity;
  return T.tensor(m, [n, n]);
}

/** softmax(q kᵀ·scale + mask) v on [B·H, n, d] (the fused attention kernel has no mask). */
export function maskedAttention(q: T.Tensor, k: T.Tensor, v: T.Tensor, scale: number, mask: T.Tensor): T.Tensor {
  const scores = T.add(T.mulScalar(T.matmul(q, T.transpose(k, 1, 2)), scale), mask);
  return T.matmul(T.softmax(scores, -1), v);
}

export class ClipAttention extends Module {
  k_proj: Layer;
  v_proj: Layer;
  q_proj: Layer;
  out_proj: Layer;
  constructor(readonly _dim: number, readonly _heads: number, b: Builder) {
    super();
    if (_dim % _heads !== 0) throw new RangeError(`CLIP attention: width ${_dim} is not divisible by ${_heads} heads`);
    this.k_proj = b.linear(_dim, _dim);
    this.v_proj = b.linear(_dim, _dim);
    this.q_proj = b.linear(_dim, _dim);
    this.out_proj = b.linear(_dim, _dim);
  }
  forward(x: T.Tensor, mask: T.Tensor): T.Tensor {
    const h = this._heads;
    const q = splitHeads(this.q_proj.forward(x), h);
    const k = splitHeads(this.k_proj.forward(x), h);
    const v = splitHeads(this.v_proj.forward(x), h);
    return this.out_proj.forward(mergeHeads(maskedAttention(q, k, v, (this._dim / h) ** -0.5, mask), h));
  }
}

export class ClipMLP extends Module {
  fc1: Layer;
  fc2: Layer;
  constructor(dim: number, inner: number, readonly _act: ClipTextConfig['hidden_act'], b: Builder) {
    super();
    this.fc1 = b.linear(dim, inner);
    this.fc2 = b.linear(inner, dim);
  }
  forward(x: T.Tensor): T.Tensor {
    const h = this.fc1.forward(x);
    return this.fc2.forward(this._act === 'quick_gelu' ? quickGelu(h) : T.gelu(h));
  }
}

export class ClipEncoderLayer extends Module {
  self_attn: ClipAttention;
  layer_norm1: Layer;
  mlp: ClipMLP;
  layer_norm2: Layer;
  constructor(c: ClipTextConfig, b: Builder) {
    super();
    this.self_attn = new ClipAttention(c.hidden_size, c.num_attention_heads, b);
    this.layer_norm1 = b.layerNorm(c.hidden_size, c.layer_norm_eps);
    this.mlp = new ClipMLP(c.hidden_size, c.intermediate_size, c.hidden_act, b);
    this.layer_norm2 = b.layerNorm(c.hidden_size, c.layer_norm_eps);
  }
  forward(x: T.Tensor, mask: T.Tensor): T.Tensor {
    const a = T.add(x, this.self_attn.forward(this.layer_norm1.forward(x), mask));
    return T.add(a, this.mlp.forward(this.layer_norm2.forward(a)));
  }
}

export class ClipTextEmbeddings extends Module {
  token_embedding: Layer;
  position_embedding: Layer;
  constructor(c: ClipTextConfig, b: Builder) {
    super();
    this.token_embedding = b.embedding(c.vocab_size, c.hidden_size);
    this.position_embedding = b.embedding(c.max_position_embeddings, c.hidden_size);
  }
  forward(ids: T.Tensor): T.Tensor {
    const n = ids.shape[1];
    const pos = this.position_embedding.forward(T.arange(0, n, 1, 'int32'));
    return T.add(this.token_embedding.forward(ids), T.unsqueeze(pos, 0));
  }
}

export class ClipEncoder extends Module {
  layers: ModuleList<ClipEncoderLayer>;
  constructor(c: ClipTextConfig, b: Builder) {
    super();
    this.layers = new ModuleList(Array.from({ length: c.num_hidden_layers }, () => new ClipEncoderLayer(c, b)));
  }
}

/** transformers' CLIPTextTransformer (the `text_model` level). */
export class ClipTextTransformer extends Module {
  embeddings: ClipTextEmbeddings;
  encoder: ClipEncoder;
  final_layer_norm: Layer;
  constructor(readonly config: ClipTextConfig, b: Builder) {
    super();
    this.embeddings = new ClipTextEmbeddings(config, b);
    this.encoder = new ClipEncoder(config, b);
    this.final_layer_norm = b.layerNorm(config.hidden_size, config.layer_norm_eps);
  }

  /** ids [B, n] (int) → last_hidden_state [B, n, width]; `hidden` collects the residual stream after each layer. */
  forward(ids: T.Tensor, hidden?: T.Tensor[]): T.Tensor {
    const c = this.config;
    if (ids.ndim !== 2) throw new RangeError(`CLIP text model: expected token ids [B, n], got [${ids.shape}]`);
    const n = ids.shape[1];
    if (n > c.max_position_embeddings) throw new RangeError(`CLIP text model: ${n} tokens exceed the ${c.max_position_embeddings} positions`);
    const mask = causalMask(n);
    let x = this.embeddings.forward(ids);
    hidden?.push(x);
    for (const layer of this.encoder.layers) {
      x = layer.forward(x, mask);
      hidden?.push(x);
    }
    return this.final_layer_norm.forward(x);
  }
}

/** transformers' CLIPTextModel: just the `text_model` level. */
export class ClipTextModel extends Module {
  text_model: ClipTextTransformer;
  constructor(config: ClipTextConfig, b: Builder) {
    super();
    this.text_model = new ClipTextTransformer(config, b);
  }
  forward(ids: T.Tensor, hidden?: T.Tensor[]): T.Tensor {
    return this.text_model.forward(ids, hidden);
  }
}

export interface FrozenCLIPEmbedderOptions extends BuildOptions {
  /** Folder of vocab.json + merges.txt (else $LDM_CLIP_VOCAB, read when text is first embedded). */
  clipVocabDir?: string;
  /** A tokenizer instead of the files. */
  clipTokenizer?: ClipTokenizer;
}

/** ldm.modules.encoders.modules.FrozenCLIPEmbedder: text → tokenizer → CLIPTextModel → last_hidden_state. */
export class FrozenCLIPEmbedder extends Module {
  transformer: ClipTextModel;
  readonly maxLength: number;
  readonly version: string;
  private tokenizerCache: ClipTokenizer | null;
  private readonly vocabDir: string | undefined;

  constructor(config: ClipTextConfig = CLIP_VIT_L14_TEXT, opts: FrozenCLIPEmbedderOptions & { maxLength?: number; version?: string } = {}) {
    super();
    this.maxLength = opts.maxLength ?? 77;
    this.version = opts.version ?? 'openai/clip-vit-large-patch14';
    this.transformer = new ClipTextModel(config, new Builder(opts));
    this.tokenizerCache = opts.clipTokenizer ?? null;
    this.vocabDir = opts.clipVocabDir;
  }

  get config(): ClipTextConfig {
    return this.transformer.text_model.config;
  }

  /** The tokenizer (loaded from the vocabulary folder on first use). */
  get tokenizer(): ClipTokenizer {
    this.tokenizerCache ??= ClipTokenizer.fromDir(this.vocabDir, { maxLength: this.maxLength });
    return this.tokenizerCache;
  }

  /** Use these tokenizer files (a folder with vocab.json and merges.txt) or this tokenizer. */
  setTokenizer(tok: ClipTokenizer | string): void {
    this.tokenizerCache = typeof tok === 'string' ? ClipTokenizer.fromDir(tok, { maxLength: this.maxLength }) : tok;
  }

  tokenize(text: string | readonly string[]): T.Tensor {
    return this.tokenizer.encodeBatch(text);
  }

  /** Text or token ids [B, 77] → [B, 77, width]. */
  forward(text: string | readonly string[] | T.Tensor): T.Tensor {
    const ids = text instanceof T.Tensor ? text : this.tokenize(text);
    return this.transformer.forward(ids);
  }

  encode(text: string | readonly string[] | T.Tensor): T.Tensor {
    return this.forward(text);
  }
}
