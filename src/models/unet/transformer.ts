// Cross-attention transformer of the conditional UNets (ldm/modules/attention.py).
//
// SpatialTransformer(C, heads, d_head, depth, context_dim), I = heads·d_head:
//   x_in = x;  x = GN(32, C, eps 1e-6)(x) → proj_in conv1×1 (C → I) → [B, H·W, I]
//   → depth × BasicTransformerBlock → [B, I, H, W] → proj_out conv1×1 (I → C, zero-init) → + x_in
// BasicTransformerBlock(I): x += attn1(LN1(x)); x += attn2(LN2(x), context); x += ff(LN3(x))   (LN eps 1e-5)
// CrossAttention: to_q/to_k/to_v Linear without bias; heads are the outer factor of the channel dim
//   ('b n (h d) -> (b h) n d'); softmax(q kᵀ · d^−½) v; to_out = [Linear(I → query_dim) with bias, Dropout].
//   Without context it is self-attention.
// FeedForward(glu): net = [GEGLU(I → 4I), Dropout, Linear(4I → I)];
// GEGLU: [a, gate] = chunk(proj(x), 2, −1) → a · gelu(gate)  (first half value, second half gate, exact erf gelu).

import * as T from '../../engine/index.js';
import { Dropout, GELU, Layer, Module, ModuleList, Sequential } from '../../nn/index.js';
import { Builder, zeroModule } from '../../nn/build.js';

export const ST_GN_GROUPS = 32;
export const ST_GN_EPS = 1e-6;

/** [B, N, H·d] → [B·H, N, d] (heads outer). */
export function splitHeads(x: T.Tensor, heads: number): T.Tensor {
  const [B, N, D] = x.shape;
  if (D % heads !== 0) throw new RangeError(`splitHeads: width ${D} is not divisible by ${heads} heads`);
  const d = D / heads;
  return T.reshape(T.permute(T.reshape(x, [B, N, heads, d]), [0, 2, 1, 3]), [B * heads, N, d]);
}

/** [B·H, N, d] → [B, N, H·d]. */
export function mergeHeads(x: T.Tensor, heads: number): T.Tensor {
  const [BH, N, d] = x.shape;
  const B = BH / heads;
  return T.reshape(T.permute(T.reshape(x, [B, heads, N, d]), [0, 2, 1, 3]), [B, N, heads * d]);
}

export class CrossAttention extends Module {
  to_q: Layer;
  to_k: Layer;
  to_v: Layer;
  to_out: Sequential;
  readonly _heads: number;
  readonly _dimHead: number;

  constructor(queryDim: number, b: Builder, opts: { contextDim?: number | null; heads?: number; dimHead?: number; dropout?: number } = {}) {
    super();
    this._heads = opts.heads ?? 8;
    this._dimHead = opts.dimHead ?? 64;
    const inner = this._heads * this._dimHead;
    const ctx = opts.contextDim ?? queryDim;
    this.to_q = b.linear(queryDim, inner, false);
    this.to_k = b.linear(ctx, inner, false);
    this.to_v = b.linear(ctx, inner, false);
    this.to_out = new Sequential([b.linear(inner, queryDim), new Dropout(opts.dropout ?? 0)]);
  }

  /** x: [B, N, query_dim], context: [B, M, context_dim] (or null: self-attention) → [B, N, query_dim]. */
  forward(x: T.Tensor, context: T.Tensor | null = null): T.Tensor {
    const ctx = context ?? x;
    // Heads split as 'b n (h d) -> (b h) n d' and merged back, inside the attention op (no copies).
    const out = T.attention(this.to_q.forward(x), this.to_k.forward(ctx), this.to_v.forward(ctx), this._dimHead ** -0.5, this._heads);
    return this.to_out.forward(out);
  }
}

export class GEGLU extends Layer {
  proj: Layer;
  constructor(dimIn: number, dimOut: number, b: Builder) {
    super();
    this.proj = b.linear(dimIn, 2 * dimOut);
  }
  forward(x: T.Tensor): T.Tensor {
    const [a, gate] = T.chunk(this.proj.forward(x), 2, -1);
    return T.mul(a, T.gelu(gate));
  }
}

export class FeedForward extends Layer {
  net: Sequential;
  constructor(dim: number, b: Builder, opts: { mult?: number; glu?: boolean; dropout?: number; dimOut?: number } = {}) {
    super();
    const inner = Math.floor(dim * (opts.mult ?? 4));
    const projectIn: Layer = opts.glu ? new GEGLU(dim, inner, b) : new Sequential([b.linear(dim, inner), new GELU()]);
    this.net = new Sequential([projectIn, new Dropout(opts.dropout ?? 0), b.linear(inner, opts.dimOut ?? dim)]);
  }
  forward(x: T.Tensor): T.Tensor {
    return this.net.forward(x);
  }
}

export class BasicTransformerBlock extends Module {
  attn1: CrossAttention;
  ff: FeedForward;
  attn2: CrossAttention;
  norm1: Layer;
  norm2: Layer;
  norm3: Layer;

  constructor(dim: number, heads: number, dHead: number, b: Builder, opts: { dropout?: number; contextDim?: number | null; gatedFF?: boolean } = {}) {
    super();
    const dropout = opts.dropout ?? 0;
    this.attn1 = new CrossAttention(dim, b, { heads, dimHead: dHead, dropout });
    this.ff = new FeedForward(dim, b, { dropout, glu: opts.gatedFF ?? true });
    this.attn2 = new CrossAttention(dim, b, { contextDim: opts.contextDim, heads, dimHead: dHead, dropout });
    this.norm1 = b.layerNorm(dim);
    this.norm2 = b.layerNorm(dim);
    this.norm3 = b.layerNorm(dim);
  }

  forward(x: T.Tensor, context: T.Tensor | null = null): T.Tensor {
    x = T.add(this.attn1.forward(this.norm1.forward(x)), x);
    x = T.add(this.attn2.forward(this.norm2.forward(x), context), x);
    return T.add(this.ff.forward(this.norm3.forward(x)), x);
  }
}

export class SpatialTransformer extends Module {
  norm: Layer;
  proj_in: Layer;
  transformer_blocks: ModuleList<BasicTransformerBlock>;
  proj_out: Layer;
  readonly _channels: number;
  readonly _heads: number;
  readonly _dimHead: number;

  constructor(channels: number, heads: number, dHead: number, b: Builder, opts: { depth?: number; dropout?: number; contextDim?: number | null } = {}) {
    super();
    if (!Number.isInteger(heads) || !Number.isInteger(dHead) || heads < 1 || dHead < 1) {
      throw new RangeError(`SpatialTransformer: invalid heads ${heads} × dim_head ${dHead} for ${channels} channels`);
    }
    const inner = heads * dHead;
    this._channels = channels;
    this._heads = heads;
    this._dimHead = dHead;
    this.norm = b.groupNorm(ST_GN_GROUPS, channels, ST_GN_EPS);
    this.proj_in = b.conv2d(channels, inner, 1);
    const blocks: BasicTransformerBlock[] = [];
    for (let i = 0; i < (opts.depth ?? 1); i++) {
      blocks.push(new BasicTransformerBlock(inner, heads, dHead, b, { dropout: opts.dropout, contextDim: opts.contextDim }));
    }
    this.transformer_blocks = new ModuleList(blocks);
    this.proj_out = zeroModule(b.conv2d(inner, channels, 1));
  }

  /** x: [B, C, H, W], context: [B, M, context_dim] | null → [B, C, H, W]. */
  forwardContext(x: T.Tensor, context: T.Tensor | null): T.Tensor {
    const [B, C, H, W] = x.shape;
    if (x.ndim !== 4 || C !== this._channels) throw new RangeError(`SpatialTransformer: expected [B, ${this._channels}, H, W], got [${x.shape}]`);
    let h = this.proj_in.forward(this.norm.forward(x)); // [B, I, H, W]
    const I = h.shape[1];
    h = T.transpose(T.reshape(h, [B, I, H * W]), 1, 2); // [B, HW, I]
    for (const blk of this.transformer_blocks) h = blk.forward(h, context);
    h = T.reshape(T.transpose(h, 1, 2), [B, I, H, W]);
    return T.add(this.proj_out.forward(h), x);
  }
}
