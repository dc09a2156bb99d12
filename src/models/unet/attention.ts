// ADM self-attention of the non-cross-attention UNets (openaimodel.AttentionBlock).
//
//   x: [B, C, H, W] → [B, C, T] (T = H·W, row-major);  qkv = conv1d_1×1(GN32(x)) : [B, 3C, T]
//   heads H = C / num_head_channels if num_head_channels != −1 else num_heads;  ch = C / H
//   QKVAttentionLegacy (default): qkv → [B·H, 3·ch, T], then q, k, v = the three ch-slices
//       — the 3C channels are ordered per head: [head0: q k v, head1: q k v, …]
//   QKVAttention (use_new_attention_order): q, k, v = chunk(qkv, 3) first, then each → [B·H, ch, T]
//   w = softmax_s((q·ch^−¼)ᵀ(k·ch^−¼)),  a[c, t] = Σ_s w[t, s] v[c, s]  → [B, C, T]
//   out = x + proj_out(a)   (proj_out conv1d 1×1, zero-initialised; the residual is the un-normalised x)
// The product of the two ch^−¼ factors is passed to the fused T.attention as its scale ch^−½.

import * as T from '../../engine/index.js';
import { Layer } from '../../nn/index.js';
import { Builder, zeroModule } from '../../nn/build.js';
import { UNET_GN_EPS, UNET_GN_GROUPS } from './resblock.js';

/** [N, ch, T] channel-major q/k/v → softmax attention over T → [N, ch, T]. */
function attendChannelsFirst(q: T.Tensor, k: T.Tensor, v: T.Tensor, ch: number): T.Tensor {
  const a = T.attention(T.transpose(q, 1, 2), T.transpose(k, 1, 2), T.transpose(v, 1, 2), 1 / Math.sqrt(ch));
  return T.transpose(a, 1, 2); // [N, ch, T]
}

/** Heads split before q/k/v: qkv [B, H·3·ch, T] → [B, H·ch, T]. */
export function qkvAttentionLegacy(qkv: T.Tensor, nHeads: number): T.Tensor {
  const [B, width, L] = qkv.shape;
  if (width % (3 * nHeads) !== 0) throw new RangeError(`QKVAttentionLegacy: width ${width} is not divisible by 3·${nHeads} heads`);
  const ch = width / (3 * nHeads);
  const [q, k, v] = T.split(T.reshape(qkv, [B * nHeads, 3 * ch, L]), [ch, ch, ch], 1);
  return T.reshape(attendChannelsFirst(q, k, v, ch), [B, nHeads * ch, L]);
}

/** q/k/v split before heads: qkv [B, 3·H·ch, T] → [B, H·ch, T]. */
export function qkvAttention(qkv: T.Tensor, nHeads: number): T.Tensor {
  const [B, width, L] = qkv.shape;
  if (width % (3 * nHeads) !== 0) throw new RangeError(`QKVAttention: width ${width} is not divisible by 3·${nHeads} heads`);
  const ch = width / (3 * nHeads);
  const [q, k, v] = T.chunk(qkv, 3, 1).map((t) => T.reshape(t, [B * nHeads, ch, L]));
  return T.reshape(attendChannelsFirst(q, k, v, ch), [B, nHeads * ch, L]);
}

export class AttentionBlock extends Layer {
  norm: Layer;
  qkv: Layer;
  proj_out: Layer;
  readonly _channels: number;
  readonly _heads: number;
  readonly _newOrder: boolean;

  constructor(channels: number, b: Builder, opts: { numHeads?: number; numHeadChannels?: number; useNewAttentionOrder?: boolean } = {}) {
    super();
    const nhc = opts.numHeadChannels ?? -1;
    if (nhc === -1) this._heads = opts.numHeads ?? 1;
    else {
      if (channels % nhc !== 0) throw new RangeError(`AttentionBlock: ${channels} channels are not divisible by num_head_channels ${nhc}`);
      this._heads = channels / nhc;
    }
    if (!(this._heads >= 1) || channels % this._heads !== 0) throw new RangeError(`AttentionBlock: ${channels} channels cannot be split into ${this._heads} heads`);
    this._channels = channels;
    this._newOrder = opts.useNewAttentionOrder ?? false;
    this.norm = b.groupNorm(UNET_GN_GROUPS, channels, UNET_GN_EPS);
    this.qkv = b.conv1x1(channels, 3 * channels);
    this.proj_out = zeroModule(b.conv1x1(channels, channels));
  }

  get heads(): number {
    return this._heads;
  }

  forward(x: T.Tensor): T.Tensor {
    const [B, C] = x.shape;
    if (C !== this._channels) throw new RangeError(`AttentionBlock: expected ${this._channels} channels, got [${x.shape}]`);
    const spatial = x.shape.slice(2);
    const xf = T.reshape(x, [B, C, -1]); // [B, C, T]
    const qkv = this.qkv.forward(T.reshape(this.norm.forward(x), [B, C, -1])); // [B, 3C, T]
    const h = this._newOrder ? qkvAttention(qkv, this._heads) : qkvAttentionLegacy(qkv, this._heads);
    return T.reshape(T.add(xf, this.proj_out.forward(h)), [B, C, ...spatial]);
  }
}
