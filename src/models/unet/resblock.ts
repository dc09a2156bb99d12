// ResBlock and the resamplers of the denoising UNet (openaimodel.py).
//
// ResBlock(C_in → C_out, emb 4·mc):
//   in_layers  = [GN32(C_in, eps 1e-5), SiLU, conv3×3(C_in → C_out)]
//   emb_layers = [SiLU, Linear(4mc → C_out, or 2·C_out with scale-shift)]
//   out_layers = [GN32(C_out), SiLU, Dropout, conv3×3(C_out → C_out)]  (zero-initialised)
//   skip       = Identity if C_in == C_out else conv1×1
//   plain:       h = out_layers(in_layers(x) + emb_out[:, :, None, None])
//   scale-shift: h = conv(drop(SiLU(GN(h)·(1 + scale) + shift))), [scale, shift] = chunk(emb_out, 2)
//   up/down (resblock_updown): GN+SiLU, then resample both h and x, then the conv.
//   out = skip(x) + h
// Downsample: conv3×3 stride 2, padding 1 (symmetric) — or 2×2 average pooling without conv_resample.
// Upsample:   nearest ×2, then conv3×3 padding 1 (when conv_resample).

import * as T from '../../engine/index.js';
import { Dropout, Identity, Layer, Module, Sequential, SiLU } from '../../nn/index.js';
import { Builder, groupNormSilu, param, zeroModule } from '../../nn/build.js';

export const UNET_GN_GROUPS = 32;
export const UNET_GN_EPS = 1e-5;

/** A block whose forward takes the timestep embedding as a second argument. */
export interface TimestepBlock {
  forwardEmb(x: T.Tensor, emb: T.Tensor): T.Tensor;
}

export function isTimestepBlock(m: unknown): m is TimestepBlock {
  return typeof (m as TimestepBlock | null)?.forwardEmb === 'function';
}

export class Downsample extends Layer {
  op: Layer | null;
  constructor(readonly _channels: number, readonly _useConv: boolean, b: Builder, outChannels?: number) {
    super();
    const out = outChannels ?? _channels;
    if (!_useConv && out !== _channels) throw new RangeError(`Downsample: pooling cannot change channels ${_channels} → ${out}`);
    // `op` is the conv (keys op.weight/op.bias) or a parameter-free average pool.
    this.op = _useConv ? b.conv2d(_channels, out, 3, { stride: 2, padding: 1 }) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.shape[1] !== this._channels) throw new RangeError(`Downsample: expected ${this._channels} channels, got [${x.shape}]`);
    return this.op ? this.op.forward(x) : T.avgPool2d(x, 2, 2);
  }
}

export class Upsample extends Layer {
  conv: Layer | null;
  constructor(readonly _channels: number, readonly _useConv: boolean, b: Builder, outChannels?: number) {
    super();
    this.conv = _useConv ? b.conv2d(_channels, outChannels ?? _channels, 3, { padding: 1 }) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.shape[1] !== this._channels) throw new RangeError(`Upsample: expected ${this._channels} channels, got [${x.shape}]`);
    const up = T.upsampleNearest(x, 2);
    return this.conv ? this.conv.forward(up) : up;
  }
}

export interface ResBlockOptions {
  outChannels?: number;
  useScaleShiftNorm?: boolean;
  dropout?: number;
  up?: boolean;
  down?: boolean;
}

export class ResBlock extends Module implements TimestepBlock {
  in_layers: Sequential;
  emb_layers: Sequential;
  out_layers: Sequential;
  skip_connection: Layer;
  readonly _cin: number;
  readonly _cout: number;
  readonly _scaleShift: boolean;
  readonly _updown: 'up' | 'down' | null;

  constructor(channels: number, embChannels: number, b: Builder, opts: ResBlockOptions = {}) {
    super();
    const cout = opts.outChannels ?? channels;
    this._cin = channels;
    this._cout = cout;
    this._scaleShift = opts.useScaleShiftNorm ?? false;
    this._updown = opts.up ? 'up' : opts.down ? 'down' : null;
    this.in_layers = new Sequential([b.groupNorm(UNET_GN_GROUPS, channels, UNET_GN_EPS), new SiLU(), b.conv2d(channels, cout, 3, { padding: 1 })]);
    this.emb_layers = new Sequential([new SiLU(), b.linear(embChannels, this._scaleShift ? 2 * cout : cout)]);
    this.out_layers = new Sequential([
      b.groupNorm(UNET_GN_GROUPS, cout, UNET_GN_EPS),
      new SiLU(),
      new Dropout(opts.dropout ?? 0),
      zeroModule(b.conv2d(cout, cout, 3, { padding: 1 })),
    ]);
    this.skip_connection = cout === channels ? new Identity() : b.conv2d(channels, cout, 1);
  }

  private resample(x: T.Tensor): T.Tensor {
    return this._updown === 'up' ? T.upsampleNearest(x, 2) : T.avgPool2d(x, 2, 2);
  }

  /** x: [B, C_in, H, W], emb: [B, 4mc] → [B, C_out, H', W']. */
  forwardEmb(x: T.Tensor, emb: T.Tensor): T.Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this._cin) throw new RangeError(`ResBlock: expected [B, ${this._cin}, H, W], got [${x.shape}]`);
    let h = groupNormSilu(this.in_layers[0], x, UNET_GN_GROUPS, UNET_GN_EPS);
    if (this._updown) {
      h = this.resample(h);
      x = this.resample(x);
    }
    h = this.in_layers[2].forward(h);
    const e = this.emb_layers[1].forward(T.silu(emb)); // [B, C_out or 2·C_out]
    const B = e.shape[0];
    if (this._scaleShift) {
      const [scale, shift] = T.chunk(T.reshape(e, [B, 2 * this._cout, 1, 1]), 2, 1);
      const norm = this.out_layers[0];
      h = T.groupNorm(h, UNET_GN_GROUPS, param(norm, 'weight'), param(norm, 'bias'), UNET_GN_EPS);
      h = T.silu(T.add(T.mul(h, T.addScalar(scale, 1)), shift));
    } else {
      h = T.add(h, T.reshape(e, [B, this._cout, 1, 1]));
      h = groupNormSilu(this.out_layers[0], h, UNET_GN_GROUPS, UNET_GN_EPS);
    }
    h = this.out_layers[2].forward(h);
    h = this.out_layers[3].forward(h);
    return T.add(this.skip_connection.forward(x), h);
  }
}
