// Conditioning encoders of LDM (ldm/modules/encoders/modules.py), state-dict compatible with `cond_stage_model.*`.
//
//   ClassEmbedder(embed_dim, n_classes=1000, key='class'):  batch[key] [B] → embedding → [B, 1, embed_dim]
//     (a context of length 1 for cross-attention; cin256-v2 uses class n_classes−1 = 1000 as "unconditional")
//   BERTEmbedder(n_embed, n_layer, vocab_size=30522, max_seq_len=77, use_tokenizer=True, embedding_dropout=0):
//     text → BERTTokenizer (WordPiece, bert-base-uncased rules, [CLS] … [SEP] [PAD=0]…, length max_seq_len)
//     → TransformerWrapper(... Encoder(n_embed, n_layer)) embeddings [B, max_seq_len, n_embed].
//     The tokenizer needs the bert-base-uncased vocab.txt, supplied by the user (opts.vocabFile);
//     token ids can always be given directly.
//   TransformerEmbedder(n_embed, n_layer, vocab_size, max_seq_len=77): token ids → embeddings.
//   SpatialRescaler(n_stages=1, method='bilinear', multiplier=0.5, in_channels=3, out_channels=None, bias=False):
//     n_stages × F.interpolate(scale_factor=multiplier) then (if out_channels) a 1×1 conv `channel_mapper`.

import * as T from '../../engine/index.js';
import { Layer, Module } from '../../nn/index.js';
import { Builder, type BuildOptions } from '../../nn/build.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { TransformerWrapper } from './x_transformer.js';

// ---- ClassEmbedder ------------------------------------------------------------------------------------

export class ClassEmbedder extends Module {
  embedding: Layer;
  constructor(readonly _embedDim: number, readonly nClasses = 1000, readonly _key = 'class', opts: BuildOptions = {}) {
    super();
    this.embedding = new Builder(opts).embedding(nClasses, _embedDim);
  }


  /** A batch dict (labels under `key`) or the labels themselves, [B] int → [B, 1, embed_dim]. */
  forward(batch: T.Tensor | Record<string, T.Tensor>, key?: string): T.Tensor {
    const k = key ?? this._key;
    const labels = batch instanceof T.Tensor ? batch : batch[k];
    if (!labels) throw new Error(`ClassEmbedder: the batch has no entry "${k}"`);
    if (labels.ndim !== 1) throw new RangeError(`ClassEmbedder: expected class labels [B], got [${labels.shape}]`);
    for (const v of labels.toArray()) {
      if (!Number.isInteger(v) || v < 0 || v >= this.nClasses) throw new RangeError(`ClassEmbedder: class ${v} is outside [0, ${this.nClasses})`);
    }
    return this.embedding.forward(T.unsqueeze(labels, 1));
  }

  encode(batch: T.Tensor | Record<string, T.Tensor>): T.Tensor {
    return this.forward(batch);
  }
}

// ---- BERT ----------------------------------------------------------------------------------------------

/** The reference's BERTTokenizer: texts → input_ids [B, max_length] (int64). */
export class BERTTokenizer {
  constructor(readonly tokenizer: WordPieceTokenizer) {}
  static fromVocabFile(path: string, maxLength = 77): BERTTokenizer {
    return new BERTTokenizer(WordPieceTokenizer.fromVocabFile(path, maxLength));
  }
  forward(text: string | readonly string[]): T.Tensor {
    return this.tokenizer.encodeBatch(text);
  }
  encode(text: string | readonly string[]): T.Tensor {
    return this.forward(text);
  }
}

export interface BERTEmbedderOptions extends BuildOptions {
  /** bert-base-uncased vocab.txt for the tokenizer (needed only to embed raw text). */
  vocabFile?: string;
  /** A tokenizer instead of vocabFile. */
  tokenizer?: WordPieceTokenizer;
}

export class BERTEmbedder extends Module {
  transformer: TransformerWrapper;
  readonly _useTokenizer: boolean;
  readonly _maxSeqLen: number;
  tokenizer: BERTTokenizer | null;

  constructor(nEmbed: number, nLayer: number, opts: BERTEmbedderOptions & { vocabSize?: number; maxSeqLen?: number; useTokenizer?: boolean; embeddingDropout?: number } = {}) {
    super();
    this._useTokenizer = opts.useTokenizer ?? true;
    this._maxSeqLen = opts.maxSeqLen ?? 77;
    this.tokenizer = null;
    if (opts.tokenizer) this.tokenizer = new BERTTokenizer(opts.tokenizer);
    else if (opts.vocabFile) this.tokenizer = BERTTokenizer.fromVocabFile(opts.vocabFile, this._maxSeqLen);
    this.transformer = new TransformerWrapper(opts.vocabSize ?? 30522, this._maxSeqLen, nEmbed, nLayer, { ...opts, embDropout: opts.embeddingDropout ?? 0 });
  }


  /** Attach the tokenizer (bert-base-uncased vocab.txt) after construction. */
  setTokenizer(tok: WordPieceTokenizer | string): void {
    this.tokenizer = typeof tok === 'string' ? BERTTokenizer.fromVocabFile(tok, this._maxSeqLen) : new BERTTokenizer(tok);
  }

  /** Texts → token ids [B, max_seq_len]. */
  tokenize(text: string | readonly string[]): T.Tensor {
    if (!this._useTokenizer) throw new Error('BERTEmbedder: this model was configured with use_tokenizer: false; pass token ids');
    if (!this.tokenizer) {
      throw new Error('BERTEmbedder: embedding text needs the bert-base-uncased vocab.txt; pass { vocabFile } when building or call setTokenizer(path)');
    }
    return this.tokenizer.forward(text);
  }

  /** Text (with use_tokenizer) or token ids [B, n] → embeddings [B, n, n_embed]. */
  forward(text: string | readonly string[] | T.Tensor): T.Tensor {
    const ids = text instanceof T.Tensor ? text : this.tokenize(text);
    return this.transformer.embed(ids);
  }

  encode(text: string | readonly string[] | T.Tensor): T.Tensor {
    return this.forward(text);
  }
}

/** TransformerEmbedder: token ids → embeddings (no tokenizer). */
export class TransformerEmbedder extends Module {
  transformer: TransformerWrapper;
  constructor(nEmbed: number, nLayer: number, vocabSize: number, maxSeqLen = 77, opts: BuildOptions = {}) {
    super();
    this.transformer = new TransformerWrapper(vocabSize, maxSeqLen, nEmbed, nLayer, opts);
  }
  forward(ids: T.Tensor): T.Tensor {
    return this.transformer.embed(ids);
  }
  encode(ids: T.Tensor): T.Tensor {
    return this.forward(ids);
  }
}

// ---- SpatialRescaler -------------------------------------------------------------------------------------

export type RescaleMethod = 'nearest' | 'bilinear';

export class SpatialRescaler extends Module {
  channel_mapper: Layer | null;
  constructor(
    readonly _nStages = 1,
    readonly _method: RescaleMethod = 'bilinear',
    readonly _multiplier = 0.5,
    inChannels = 3,
    outChannels: number | null = null,
    bias = false,
    opts: BuildOptions = {},
  ) {
    super();
    if (!Number.isInteger(_nStages) || _nStages < 0) throw new RangeError(`SpatialRescaler: n_stages must be ≥ 0, got ${_nStages}`);
    if (_method !== 'nearest' && _method !== 'bilinear') throw new Error(`SpatialRescaler: method "${_method}" is not supported (nearest, bilinear)`);
    this.channel_mapper = outChannels !== null ? new Builder(opts).conv2d(inChannels, outChannels, 1, { bias }) : null;
  }


  /**
   * One F.interpolate(x, scale_factor=m) stage. Output size floor(H·m); PyTorch maps output pixel i to the
   * source coordinate (i + 0.5)/m − 0.5 (bilinear) or floor(i/m) (nearest) using the given factor.
   * For m = 0.5 bilinear that is exactly the mean of the 2×2 block (weights ½, ½ on each axis).
   */
  private stage(x: T.Tensor): T.Tensor {
    const m = this._multiplier;
    const [, , H, W] = x.shape;
    const oh = Math.floor(H * m), ow = Math.floor(W * m);
    if (this._method === 'bilinear') {
      if (m === 0.5) return T.avgPool2d(x, 2, 2);
      if (Math.abs(H / oh - 1 / m) > 1e-12 || Math.abs(W / ow - 1 / m) > 1e-12) {
        throw new Error(`SpatialRescaler: bilinear with multiplier ${m} on ${H}×${W} is only supported when the size divides exactly`);
      }
      return T.interpolateBilinear(x, [oh, ow]);
    }
    // nearest: source index floor(i / m)
    const rows = Array.from({ length: oh }, (_, i) => Math.min(Math.floor(i / m), H - 1));
    const cols = Array.from({ length: ow }, (_, j) => Math.min(Math.floor(j / m), W - 1));
    const picked = T.indexSelect(x, 2, T.tensor(rows, [oh], 'int32'));
    return T.indexSelect(picked, 3, T.tensor(cols, [ow], 'int32'));
  }

  forward(x: T.Tensor): T.Tensor {
    if (x.ndim !== 4) throw new RangeError(`SpatialRescaler: expected [B, C, H, W], got [${x.shape}]`);
    for (let s = 0; s < this._nStages; s++) x = this.stage(x);
    return this.channel_mapper ? this.channel_mapper.forward(x) : x;
  }

  encode(x: T.Tensor): T.Tensor {
    return this.forward(x);
  }
}
