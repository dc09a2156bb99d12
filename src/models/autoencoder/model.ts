// Encoder and Decoder of the first-stage autoencoders (model.py), configured by `ddconfig`.
//
// Encoder: conv_in(in→ch); level i (0..L-1): num_res_blocks × ResnetBlock(ch·in_mult[i] → ch·mult[i])
//   (+ AttnBlock after each when the *config* resolution at that level is in attn_resolutions),
//   Downsample unless last; mid (block_1, attn_1, block_2); norm_out, swish, conv_out(→ 2z or z).
// Decoder: conv_in(z → ch·mult[L-1]); mid; level i = L-1..0: (num_res_blocks+1) × ResnetBlock(→ ch·mult[i])
//   (+ AttnBlock), Upsample unless i = 0; norm_out, swish, conv_out(→ out_ch).
//   `up.{i}` is level i (the reference builds the list with insert(0, …)); the lowest resolution runs first.
// mid.attn_1 exists whatever attn_resolutions says (Identity only for attn_type "none").

import * as T from '../../engine/index.js';
import { Layer, Module, ModuleList } from '../../nn/index.js';
import type { Params } from '../../io/config.js';
import { Builder, groupNormSilu, type BuildOptions } from '../../nn/build.js';
import { AE_GN_EPS, AE_GN_GROUPS, Downsample, ResnetBlock, Upsample, makeAttn, type AttnType } from './blocks.js';

/** `ddconfig` of the reference (shared by Encoder and Decoder; each ignores the other's keys). */
export interface DDConfig {
  ch: number;
  out_ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  attn_resolutions: number[];
  dropout: number;
  resamp_with_conv: boolean;
  in_channels: number;
  resolution: number;
  z_channels: number;
  double_z: boolean;
  attn_type: AttnType;
  give_pre_end: boolean;
  tanh_out: boolean;
}

/** Read a `ddconfig` mapping with the reference's defaults. */
export function parseDDConfig(p: Params): DDConfig {
  const cfg: DDConfig = {
    ch: p.int('ch'),
    out_ch: p.int('out_ch'),
    ch_mult: p.ints('ch_mult', [1, 2, 4, 8]),
    num_res_blocks: p.int('num_res_blocks'),
    attn_resolutions: p.ints('attn_resolutions'),
    dropout: p.number('dropout', 0),
    resamp_with_conv: p.bool('resamp_with_conv', true),
    in_channels: p.int('in_channels'),
    resolution: p.int('resolution'),
    z_channels: p.int('z_channels'),
    double_z: p.bool('double_z', true),
    attn_type: p.oneOf('attn_type', ['vanilla', 'linear', 'none'] as const, 'vanilla'),
    give_pre_end: p.bool('give_pre_end', false),
    tanh_out: p.bool('tanh_out', false),
  };
  if (p.bool('use_linear_attn', false)) cfg.attn_type = 'linear';
  return cfg;
}

/**
 * Run fn in a memory scope when no graph is being recorded (inference): intermediates are freed as soon
 * as the result exists. With gradients on, the graph needs them, so they are left to backward.
 */
export function scoped(fn: () => T.Tensor): T.Tensor {
  return T.isGradEnabled() ? fn() : T.tidy(fn);
}

/**
 * Apply `stages` one after another to x. In inference each stage runs in its own memory scope and the
 * previous stage's output is freed once the next one exists, so at most two stage outputs (plus one stage's
 * intermediates) are alive at a time: at 512×512 the decoder's 128/256-channel maps are ~0.5 GiB each.
 */
export function chain(x: T.Tensor, stages: ((h: T.Tensor) => T.Tensor)[]): T.Tensor {
  if (T.isGradEnabled()) return stages.reduce((h, f) => f(h), x);
  let h = x;
  for (const f of stages) {
    const next = T.tidy(() => f(h));
    if (h !== x && next !== h) h.dispose(); // (an identity stage hands its input on)
    h = next;
  }
  return h;
}

/** One resolution level: `block.{j}`, `attn.{j}`, and `downsample` / `upsample`. */
/** One resolution level: n ResnetBlocks (blockIn → blockOut, then blockOut → blockOut), each followed by
 *  an attention block when the level's resolution is in attn_resolutions; then the resampler, if any. */
class Level extends Module {
  block = new ModuleList<ResnetBlock>();
  attn = new ModuleList<Layer>();
  downsample: Downsample | null = null;
  upsample: Upsample | null = null;

  constructor(blockIn: number, blockOut: number, n: number, withAttn: boolean, cfg: DDConfig, b: Builder) {
    super();
    for (let j = 0; j < n; j++) {
      this.block.push(new ResnetBlock(j === 0 ? blockIn : blockOut, blockOut, cfg.dropout, b));
      if (withAttn) this.attn.push(makeAttn(blockOut, cfg.attn_type, b));
    }
  }

  /** The blocks (and their attention), then the resampler, as stages for `chain`. */
  stages(): ((h: T.Tensor) => T.Tensor)[] {
    const out: ((h: T.Tensor) => T.Tensor)[] = [];
    for (let j = 0; j < this.block.length; j++) {
      out.push((h) => this.block[j].forward(h));
      if (this.attn.length > 0) out.push((h) => this.attn[j].forward(h));
    }
    const resample = this.downsample ?? this.upsample;
    if (resample) out.push((h) => resample.forward(h));
    return out;
  }
}

class Mid extends Module {
  constructor(public block_1: ResnetBlock, public attn_1: Layer, public block_2: ResnetBlock) {
    super();
  }
  forward(h: T.Tensor): T.Tensor {
    return this.block_2.forward(this.attn_1.forward(this.block_1.forward(h)));
  }
}

export class Encoder extends Module {
  conv_in: Layer;
  down = new ModuleList<Level>();
  mid: Mid;
  norm_out: Layer;
  conv_out: Layer;

  constructor(readonly _cfg: DDConfig, opts: BuildOptions = {}) {
    super();
    const b = new Builder(opts);
    const { ch, ch_mult, num_res_blocks, attn_resolutions, dropout } = _cfg;
    const inMult = [1, ...ch_mult];
    this.conv_in = b.conv2d(_cfg.in_channels, ch, 3, { padding: 1 });
    let res = _cfg.resolution;
    let blockIn = ch;
    for (let i = 0; i < ch_mult.length; i++) {
      const blockOut = ch * ch_mult[i];
      const level = new Level(ch * inMult[i], blockOut, num_res_blocks, attn_resolutions.includes(res), _cfg, b);
      blockIn = blockOut;
      if (i !== ch_mult.length - 1) {
        level.downsample = new Downsample(blockIn, _cfg.resamp_with_conv, b);
        res = Math.floor(res / 2);
      }
      this.down.push(level);
    }
    this.mid = new Mid(new ResnetBlock(blockIn, blockIn, dropout, b), makeAttn(blockIn, _cfg.attn_type, b), new ResnetBlock(blockIn, blockIn, dropout, b));
    this.norm_out = b.groupNorm(AE_GN_GROUPS, blockIn, AE_GN_EPS);
    this.conv_out = b.conv2d(blockIn, _cfg.double_z ? 2 * _cfg.z_channels : _cfg.z_channels, 3, { padding: 1 });
  }

  /** x [B, in_channels, H, W] (H, W divisible by 2^(L-1)) → [B, 2z or z, H/2^(L-1), W/2^(L-1)]. */
  forward(x: T.Tensor): T.Tensor {
    return chain(x, [
      (h) => this.conv_in.forward(h),
      ...[...this.down].flatMap((level) => level.stages()),
      (h) => this.mid.forward(h),
      (h) => this.conv_out.forward(groupNormSilu(this.norm_out, h, AE_GN_GROUPS, AE_GN_EPS)),
    ]);
  }
}

export class Decoder extends Module {
  conv_in: Layer;
  mid: Mid;
  up = new ModuleList<Level>();
  norm_out: Layer;
  conv_out: Layer;

  constructor(readonly _cfg: DDConfig, opts: BuildOptions = {}) {
    super();
    const b = new Builder(opts);
    const { ch, ch_mult, num_res_blocks, attn_resolutions, dropout } = _cfg;
    const L = ch_mult.length;
    let blockIn = ch * ch_mult[L - 1];
    let res = Math.floor(_cfg.resolution / 2 ** (L - 1));
    this.conv_in = b.conv2d(_cfg.z_channels, blockIn, 3, { padding: 1 });
    this.mid = new Mid(new ResnetBlock(blockIn, blockIn, dropout, b), makeAttn(blockIn, _cfg.attn_type, b), new ResnetBlock(blockIn, blockIn, dropout, b));
    const levels: Level[] = new Array(L);
    for (let i = L - 1; i >= 0; i--) {
      const blockOut = ch * ch_mult[i];
      const level = new Level(blockIn, blockOut, num_res_blocks + 1, attn_resolutions.includes(res), _cfg, b);
      blockIn = blockOut;
      if (i !== 0) {
        level.upsample = new Upsample(blockIn, _cfg.resamp_with_conv, b);
        res *= 2;
      }
      levels[i] = level;
    }
    for (const level of levels) this.up.push(level);
    this.norm_out = b.groupNorm(AE_GN_GROUPS, blockIn, AE_GN_EPS);
    this.conv_out = b.conv2d(blockIn, _cfg.out_ch, 3, { padding: 1 });
  }

  /** z [B, z_channels, h, w] → image [B, out_ch, h·2^(L-1), w·2^(L-1)]. */
  forward(z: T.Tensor): T.Tensor {
    const levels = [...this.up].reverse().flatMap((level) => level.stages());
    const head = this._cfg.give_pre_end ? [] : [(h: T.Tensor) => {
      const y = this.conv_out.forward(groupNormSilu(this.norm_out, h, AE_GN_GROUPS, AE_GN_EPS));
      return this._cfg.tanh_out ? T.tanh(y) : y;
    }];
    return chain(z, [(h) => this.conv_in.forward(h), (h) => this.mid.forward(h), ...levels, ...head]);
  }
}
