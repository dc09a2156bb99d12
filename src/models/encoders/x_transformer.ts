// The BERT-like text transformer of LDM (ldm/modules/x_transformer.py, a trimmed x-transformers):
// TransformerWrapper(num_tokens, max_seq_len, attn_layers = Encoder(dim, depth)) with the defaults the
// reference uses — learned absolute positions, pre-norm, ('a', 'f') × depth, no masks.
//
//   x = token_emb(ids) + pos_emb(arange(n))           (both N(0, 0.02²) at init)
//   for each layer (LayerNorm, block): x = block(LayerNorm(x)) + x          (LN eps 1e-5)
//     'a': Attention — to_q/to_k/to_v Linear(dim → heads·dim_head, no bias), heads outer factor,
//          softmax(q kᵀ · dim_head^−½) v (no mask), to_out Linear(heads·dim_head → dim) with bias
//     'f': FeedForward — net = [[Linear(dim → 4dim), GELU], Dropout, Linear(4dim → dim)]
//   x = norm(x)  → embeddings [B, n, dim]  (to_logits exists for the state dict, used only for logits)
// Keys: token_emb, pos_emb.emb, attn_layers.layers.{i}.{0: norm, 1: block}, norm, to_logits.

import * as T from '../../engine/index.js';
import { Dropout, GELU, Layer, Module, ModuleList, Sequential } from '../../nn/index.js';
import { Builder, normalInit, type BuildOptions } from '../../nn/build.js';

export const DEFAULT_DIM_HEAD = 64;

export class AbsolutePositionalEmbedding extends Module {
  emb: Layer;
  constructor(dim: number, maxSeqLen: number, b: Builder) {
    super();
    this.emb = normalInit(b.embedding(maxSeqLen, dim), 0.02, b.gen);
  }
  /** Positions 0..n−1 → [1, n, dim]. */
  forward(n: number): T.Tensor {
    return T.unsqueeze(this.emb.forward(T.arange(0, n, 1, 'int32')), 0);
  }
}

export class Attention extends Layer {
  to_q: Layer;
  to_k: Layer;
  to_v: Layer;
  to_out: Layer;
  constructor(dim: number, b: Builder, readonly _heads = 8, readonly _dimHead = DEFAULT_DIM_HEAD) {
    super();
    const inner = _heads * _dimHead;
    this.to_q = b.linear(dim, inner, false);
    this.to_k = b.linear(dim, inner, false);
    this.to_v = b.linear(dim, inner, false);
    this.to_out = b.linear(inner, dim);
  }
  /** Self-attention without mask: [B, n, dim] → [B, n, dim]. */
  forward(x: T.Tensor): T.Tensor {
    const out = T.attention(this.to_q.forward(x), this.to_k.forward(x), this.to_v.forward(x), this._dimHead ** -0.5, this._heads);
    return this.to_out.forward(out);
  }
}

export class FeedForward extends Layer {
  net: Sequential;
  constructor(dim: number, b: Builder, mult = 4, dropout = 0) {
    super();
    const inner = Math.floor(dim * mult);
    this.net = new Sequential([new Sequential([b.linear(dim, inner), new GELU()]), new Dropout(dropout), b.linear(inner, dim)]);
  }
  forward(x: T.Tensor): T.Tensor {
    return this.net.forward(x);
  }
}

/** One pre-norm residual layer: keys `0` (LayerNorm) and `1` (the block); the reference's Residual (index 2) has no parameters. */
export class PreNormResidual extends ModuleList<Layer> {
  constructor(norm: Layer, block: Layer) {
    super([norm, block]);
  }
  forward(x: T.Tensor): T.Tensor {
    return T.add(this[1].forward(this[0].forward(x)), x);
  }
}

/** Encoder = AttentionLayers(causal=False) with the reference defaults: ('a', 'f') × depth, pre-norm. */
export class Encoder extends Module {
  layers: ModuleList<PreNormResidual>;
  readonly _dim: number;
  constructor(dim: number, depth: number, b: Builder, opts: { heads?: number; dimHead?: number } = {}) {
    super();
    this._dim = dim;
    const layers: PreNormResidual[] = [];
    for (let i = 0; i < depth; i++) {
      layers.push(new PreNormResidual(b.layerNorm(dim), new Attention(dim, b, opts.heads ?? 8, opts.dimHead ?? DEFAULT_DIM_HEAD)));
      layers.push(new PreNormResidual(b.layerNorm(dim), new FeedForward(dim, b)));
    }
    this.layers = new ModuleList(layers);
  }
  forward(x: T.Tensor): T.Tensor {
    for (const l of this.layers) x = l.forward(x);
    return x;
  }
}

export interface TransformerWrapperOptions extends BuildOptions {
  embDropout?: number;
  heads?: number;
  dimHead?: number;
}

export class TransformerWrapper extends Module {
  token_emb: Layer;
  pos_emb: AbsolutePositionalEmbedding;
  emb_dropout: Dropout;
  attn_layers: Encoder;
  norm: Layer;
  to_logits: Layer;
  readonly _maxSeqLen: number;
  readonly _numTokens: number;

  constructor(numTokens: number, maxSeqLen: number, dim: number, depth: number, opts: TransformerWrapperOptions = {}) {
    super();
    const b = new Builder(opts);
    this._maxSeqLen = maxSeqLen;
    this._numTokens = numTokens;
    // Registration order of the reference: token_emb, pos_emb, emb_dropout, (project_emb = Identity), attn_layers, norm, to_logits.
    this.token_emb = b.embedding(numTokens, dim);
    this.pos_emb = new AbsolutePositionalEmbedding(dim, maxSeqLen, b);
    this.emb_dropout = new Dropout(opts.embDropout ?? 0);
    this.attn_layers = new Encoder(dim, depth, b, { heads: opts.heads, dimHead: opts.dimHead });
    this.norm = b.layerNorm(dim);
    normalInit(this.token_emb, 0.02, b.gen); // init_() runs after the norm is created, before to_logits
    this.to_logits = b.linear(dim, numTokens);
  }

  /** Token ids [B, n] (int) → embeddings [B, n, dim] (return_embeddings=True). */
  embed(ids: T.Tensor): T.Tensor {
    if (ids.ndim !== 2) throw new RangeError(`TransformerWrapper: expected token ids [B, n], got [${ids.shape}]`);
    const n = ids.shape[1];
    if (n > this._maxSeqLen) throw new RangeError(`TransformerWrapper: sequence length ${n} exceeds max_seq_len ${this._maxSeqLen}`);
    let x = T.add(this.token_emb.forward(ids), this.pos_emb.forward(n));
    x = this.emb_dropout.forward(x);
    x = this.attn_layers.forward(x);
    return this.norm.forward(x);
  }

  /** Token ids → logits [B, n, num_tokens]. */
  logits(ids: T.Tensor): T.Tensor {
    return this.to_logits.forward(this.embed(ids));
  }
}
