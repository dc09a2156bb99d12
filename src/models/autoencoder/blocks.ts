// Building blocks of the first-stage autoencoders (ldm/modules/diffusionmodules/model.py).
//
//   Normalize(C)  = GroupNorm(32 groups, C, eps 1e-6, affine)
//   ResnetBlock   : h = conv1(swish(norm1(x))); h = conv2(dropout(swish(norm2(h)))); out = shortcut(x) + h
//                   shortcut = identity if C_in == C_out, else nin_shortcut (1×1 conv). No timestep input.
//   AttnBlock(C)  : single head over all H·W positions, q/k/v/proj_out 1×1 convs, scale C^-1/2, residual.
//   Downsample    : pad right/bottom by 1 (F.pad (0,1,0,1)), then 3×3 conv stride 2, padding 0.
//   Upsample      : nearest ×2, then 3×3 conv padding 1.

import * as T from '../../engine/index.js';
import { Dropout, Identity, Layer, Module } from '../../nn/index.js';
import { Builder, groupNormSilu, param } from '../../nn/build.js';

export const AE_GN_GROUPS = 32;
export const AE_GN_EPS = 1e-6;

export type AttnType = 'vanilla' | 'linear' | 'none';

function conv(c: Layer, x: T.Tensor): T.Tensor {
  return c.forward(x);
}

export class ResnetBlock extends Module {
  norm1: Layer;
  conv1: Layer;
  norm2: Layer;
  dropout: Dropout;
  conv2: Layer;
  nin_shortcut: Layer | null;

  constructor(readonly _in: number, readonly _out: number, dropout: number, b: Builder) {
    super();
    this.norm1 = b.groupNorm(AE_GN_GROUPS, _in, AE_GN_EPS);
    this.conv1 = b.conv2d(_in, _out, 3, { padding: 1 });
    this.norm2 = b.groupNorm(AE_GN_GROUPS, _out, AE_GN_EPS);
    this.dropout = new Dropout(dropout);
    this.conv2 = b.conv2d(_out, _out, 3, { padding: 1 });
    this.nin_shortcut = _in !== _out ? b.conv2d(_in, _out, 1) : null;
  }

  forward(x: T.Tensor): T.Tensor {
    let h = conv(this.conv1, groupNormSilu(this.norm1, x, AE_GN_GROUPS, AE_GN_EPS)); // [B, C_out, H, W]
    h = conv(this.conv2, this.dropout.forward(groupNormSilu(this.norm2, h, AE_GN_GROUPS, AE_GN_EPS)));
    const skip = this.nin_shortcut ? conv(this.nin_shortcut, x) : x;
    return T.add(skip, h);
  }
}

/** Single-head self-attention over the H·W positions of a feature map (token index y·W + x). */
export class AttnBlock extends Layer {
  norm: Layer;
  q: Layer;
  k: Layer;
  v: Layer;
  proj_out: Layer;

  constructor(readonly _channels: number, b: Builder) {
    super();
    this.norm = b.groupNorm(AE_GN_GROUPS, _channels, AE_GN_EPS);
    this.q = b.conv2d(_channels, _channels, 1);
    this.k = b.conv2d(_channels, _channels, 1);
    this.v = b.conv2d(_channels, _channels, 1);
    this.proj_out = b.conv2d(_channels, _channels, 1);
  }

  forward(x: T.Tensor): T.Tensor {
    const [B, C, H, W] = x.shape;
    const h = this.norm.forward(x);
    // [B, C, H, W] → [B, HW, C]
    const tokens = (t: T.Tensor) => T.transpose(T.reshape(t, [B, C, H * W]), 1, 2);
    const q = tokens(this.q.forward(h)), k = tokens(this.k.forward(h)), v = tokens(this.v.forward(h));
    const o = T.attention(q, k, v, C ** -0.5); // [B, HW, C]
    const out = T.reshape(T.transpose(o, 1, 2), [B, C, H, W]);
    return T.add(x, this.proj_out.forward(out));
  }
}

/**
 * LinAttnBlock (attn_type "linear"; no released model uses it): LinearAttention with one head of width C,
 * no norm and no residual: k softmaxed over positions, context = k vᵀ, out = contextᵀ q, then to_out.
 */
export class LinAttnBlock extends Layer {
  to_qkv: Layer;
  to_out: Layer;
  constructor(readonly _channels: number, b: Builder) {
    super();
    this.to_qkv = b.conv2d(_channels, 3 * _channels, 1, { bias: false });
    this.to_out = b.conv2d(_channels, _channels, 1);
  }
  forward(x: T.Tensor): T.Tensor {
    const [B, C, H, W] = x.shape;
    const qkv = T.reshape(this.to_qkv.forward(x), [B, 3, C, H * W]);
    const [q, k, v] = [0, 1, 2].map((i) => T.reshape(T.slice(qkv, 1, i, i + 1), [B, C, H * W]));
    const ks = T.softmax(k, -1);
    const context = T.matmul(ks, T.transpose(v, 1, 2)); // [B, d, e] = Σ_n k[d,n] v[e,n]
    const out = T.matmul(T.transpose(context, 1, 2), q); // [B, e, n] = Σ_d context[d,e] q[d,n]
    return this.to_out.forward(T.reshape(out, [B, C, H, W]));
  }
}

/** make_attn: the attention layer for `attn_type` ("none" → Identity, no parameters). */
export function makeAttn(channels: number, type: AttnType, b: Builder): Layer {
  if (type === 'vanilla') return new AttnBlock(channels, b);
  if (type === 'linear') return new LinAttnBlock(channels, b);
  return new Identity();
}

/** Asymmetric-pad stride-2 conv: F.pad(x, (0,1,0,1)) then conv3×3 stride 2 padding 0. */
export class Downsample extends Layer {
  conv: Layer | null;
  /** withConv false (resamp_with_conv: false): 2×2 average pooling, no parameters. */
  constructor(readonly _channels: number, withConv: boolean, b: Builder) {
    super();
    this.conv = withConv ? b.conv2d(_channels, _channels, 3, { stride: 2, padding: 0 }) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (!this.conv) return T.avgPool2d(x, 2, 2);
    // Padding [top 0, bottom 1, left 0, right 1] inside the conv equals F.pad (0,1,0,1) followed by padding 0.
    return T.conv2d(x, param(this.conv, 'weight'), param(this.conv, 'bias'), { stride: 2, padding: [0, 1, 0, 1] });
  }
}

export class Upsample extends Layer {
  conv: Layer | null;
  constructor(readonly _channels: number, withConv: boolean, b: Builder) {
    super();
    this.conv = withConv ? b.conv2d(_channels, _channels, 3, { padding: 1 }) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    const up = T.upsampleNearest(x, 2);
    return this.conv ? this.conv.forward(up) : up;
  }
}
