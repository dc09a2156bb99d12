// The denoising UNet of LDM (openaimodel.UNetModel), state-dict compatible with `model.diffusion_model.*`.
//
//   emb = time_embed(timestep_embedding(t, mc))   time_embed = [Linear(mc → 4mc), SiLU, Linear(4mc → 4mc)]
//         (+ label_emb(y) when num_classes is set)
//   input_blocks[0] = conv3×3(in → mc); per level l: num_res_blocks × [ResBlock(→ mult_l·mc) (+ attention at
//   ds ∈ attention_resolutions)], then (not last level) Downsample or ResBlock(down); ds *= 2
//   middle_block = [ResBlock, attention, ResBlock]
//   output_blocks: levels reversed, num_res_blocks + 1 × [ResBlock(ch + skip → mult_l·mc) (+ attention)]
//   (+ Upsample / ResBlock(up) on the last one of levels > 0);  skip concat is cat([h, skip], channels)
//   out = [GN32, SiLU, conv3×3(mc → out)] (zero-initialised)
// Attention is AttentionBlock (ADM) or SpatialTransformer (use_spatial_transformer); its head count
// follows the reference HEAD code exactly (see headsFor below, and UNetModel.__init__ in ldm/modules/diffusionmodules/openaimodel.py).

import * as T from '../../engine/index.js';
import { Layer, Module, ModuleList, Sequential, SiLU } from '../../nn/index.js';
import { AttentionBlock } from './attention.js';
import { Builder, groupNormSilu, isMeta, zeroModule } from '../../nn/build.js';
import type { UNetBuildOptions } from './build.js';
import { Downsample, isTimestepBlock, ResBlock, Upsample, UNET_GN_EPS, UNET_GN_GROUPS } from './resblock.js';
import { timestepEmbedding } from './timestep.js';
import { SpatialTransformer } from './transformer.js';

/** UNetModel's constructor arguments, under the names of the reference config (`unet_config.params`). */
export interface UNetConfig {
  image_size?: number;
  in_channels: number;
  model_channels: number;
  out_channels: number;
  num_res_blocks: number;
  attention_resolutions: number[];
  dropout?: number;
  channel_mult?: number[];
  conv_resample?: boolean;
  dims?: number;
  num_classes?: number | null;
  use_checkpoint?: boolean;
  use_fp16?: boolean;
  num_heads?: number;
  num_head_channels?: number;
  num_heads_upsample?: number;
  use_scale_shift_norm?: boolean;
  resblock_updown?: boolean;
  use_new_attention_order?: boolean;
  use_spatial_transformer?: boolean;
  transformer_depth?: number;
  context_dim?: number | null;
  n_embed?: number | null;
  legacy?: boolean;
}

/** Runs its children in order, giving the timestep embedding to ResBlocks and the context to transformers. */
export class TimestepEmbedSequential extends ModuleList<Module> {
  forward(x: T.Tensor, emb: T.Tensor, context: T.Tensor | null = null): T.Tensor {
    for (const m of this) {
      if (isTimestepBlock(m)) x = m.forwardEmb(x, emb);
      else if (m instanceof SpatialTransformer) x = m.forwardContext(x, context);
      else if (m instanceof Layer) x = m.forward(x);
      else throw new Error(`TimestepEmbedSequential: cannot run ${m.constructor.name}`);
    }
    return x;
  }
}

/** One attention layer of the UNet, as the reference builds it. */
export interface AttentionSpec {
  kind: 'AttentionBlock' | 'SpatialTransformer';
  channels: number;
  heads: number;
  dimHead: number;
}

export class UNetModel extends Module {
  time_embed: Sequential;
  label_emb: Layer | null;
  input_blocks: ModuleList<TimestepEmbedSequential>;
  middle_block: TimestepEmbedSequential;
  output_blocks: ModuleList<TimestepEmbedSequential>;
  out: Sequential;
  id_predictor: Sequential | null;
  readonly config: Required<Pick<UNetConfig, 'in_channels' | 'model_channels' | 'out_channels'>> & UNetConfig;
  readonly _numClasses: number | null;
  readonly _attention: AttentionSpec[] = [];

  constructor(cfg: UNetConfig, opts: UNetBuildOptions = {}) {
    super();
    const b = new Builder(opts);
    const mc = cfg.model_channels;
    const channelMult = cfg.channel_mult ?? [1, 2, 4, 8];
    const attnRes = cfg.attention_resolutions;
    const dropout = cfg.dropout ?? 0;
    const convResample = cfg.conv_resample ?? true;
    const useST = cfg.use_spatial_transformer ?? false;
    const legacy = cfg.legacy ?? true;
    const nhc = cfg.num_head_channels ?? -1;
    let numHeads = cfg.num_heads ?? -1;
    const numHeadsUpsample = (cfg.num_heads_upsample ?? -1) === -1 ? numHeads : cfg.num_heads_upsample!;
    const contextDim = cfg.context_dim ?? null;
    const depth = cfg.transformer_depth ?? 1;
    const scaleShift = cfg.use_scale_shift_norm ?? false;
    const updown = cfg.resblock_updown ?? false;
    const newOrder = cfg.use_new_attention_order ?? false;
    if ((cfg.dims ?? 2) !== 2) throw new Error(`UNetModel: only dims=2 is supported, got dims=${cfg.dims}`);
    if (useST && contextDim === null) throw new Error('UNetModel: use_spatial_transformer needs context_dim (the cross-attention conditioning width)');
    if (contextDim !== null && !useST) throw new Error('UNetModel: context_dim is set but use_spatial_transformer is false');
    if (numHeads === -1 && nhc === -1) throw new Error('UNetModel: either num_heads or num_head_channels has to be set');
    this.config = { ...cfg };
    this._numClasses = cfg.num_classes ?? null;

    const embDim = 4 * mc;
    this.time_embed = new Sequential([b.linear(mc, embDim), new SiLU(), b.linear(embDim, embDim)]);
    this.label_emb = this._numClasses !== null ? b.embedding(this._numClasses, embDim) : null;

    const res = (cin: number, cout: number, extra: { up?: boolean; down?: boolean } = {}) =>
      new ResBlock(cin, embDim, b, { outChannels: cout, dropout, useScaleShiftNorm: scaleShift, ...extra });

    // Head count at a block of `ch` channels — the reference mutates num_heads when num_head_channels is set.
    const attention = (ch: number, upsample: boolean): Module => {
      let dimHead: number;
      if (nhc === -1) dimHead = Math.floor(ch / numHeads);
      else {
        numHeads = Math.floor(ch / nhc);
        dimHead = nhc;
      }
      if (legacy) dimHead = useST ? Math.floor(ch / numHeads) : nhc;
      if (useST) {
        const single = legacy && opts.legacyTransformerHeads === 'single';
        const [heads, dh] = single ? [1, ch] : [numHeads, dimHead];
        this._attention.push({ kind: 'SpatialTransformer', channels: ch, heads, dimHead: dh });
        return new SpatialTransformer(ch, heads, dh, b, { depth, dropout, contextDim });
      }
      const blk = new AttentionBlock(ch, b, { numHeads: upsample ? numHeadsUpsample : numHeads, numHeadChannels: dimHead, useNewAttentionOrder: newOrder });
      this._attention.push({ kind: 'AttentionBlock', channels: ch, heads: blk.heads, dimHead: ch / blk.heads });
      return blk;
    };

    this.input_blocks = new ModuleList([new TimestepEmbedSequential([b.conv2d(cfg.in_channels, mc, 3, { padding: 1 })])]);
    const inputChans = [mc];
    let ch = mc;
    let ds = 1;
    channelMult.forEach((mult, level) => {
      for (let i = 0; i < cfg.num_res_blocks; i++) {
        const layers: Module[] = [res(ch, mult * mc)];
        ch = mult * mc;
        if (attnRes.includes(ds)) layers.push(attention(ch, false));
        this.input_blocks.push(new TimestepEmbedSequential(layers));
        inputChans.push(ch);
      }
      if (level !== channelMult.length - 1) {
        this.input_blocks.push(new TimestepEmbedSequential([updown ? res(ch, ch, { down: true }) : new Downsample(ch, convResample, b, ch)]));
        inputChans.push(ch);
        ds *= 2;
      }
    });

    this.middle_block = new TimestepEmbedSequential([res(ch, ch), attention(ch, false), res(ch, ch)]);

    this.output_blocks = new ModuleList();
    [...channelMult.entries()].reverse().forEach(([level, mult]) => {
      for (let i = 0; i <= cfg.num_res_blocks; i++) {
        const skip = inputChans.pop()!;
        const layers: Module[] = [res(ch + skip, mc * mult)];
        ch = mc * mult;
        if (attnRes.includes(ds)) layers.push(attention(ch, true));
        if (level > 0 && i === cfg.num_res_blocks) {
          layers.push(updown ? res(ch, ch, { up: true }) : new Upsample(ch, convResample, b, ch));
          ds = Math.floor(ds / 2);
        }
        this.output_blocks.push(new TimestepEmbedSequential(layers));
      }
    });

    this.out = new Sequential([b.groupNorm(UNET_GN_GROUPS, ch, UNET_GN_EPS), new SiLU(), zeroModule(b.conv2d(mc, cfg.out_channels, 3, { padding: 1 }))]);
    this.id_predictor = cfg.n_embed
      ? new Sequential([b.groupNorm(UNET_GN_GROUPS, ch, UNET_GN_EPS), b.conv2d(mc, cfg.n_embed, 1)])
      : null;
  }

  /** Every attention layer in construction order (input blocks, middle, output blocks). */
  get attentionLayers(): readonly AttentionSpec[] {
    return this._attention;
  }

  /**
   * x: [B, in, H, W]; timesteps: [B] (int or float); context: [B, M, context_dim] for cross-attention
   * models; y: [B] class labels for class-conditional ones → [B, out, H, W] (or codebook logits with n_embed).
   */
  forward(x: T.Tensor, timesteps: T.Tensor, context: T.Tensor | null = null, y: T.Tensor | null = null): T.Tensor {
    const first = this.namedParameters().next().value;
    if (first && isMeta(first[1])) {
      throw new Error('UNetModel: this model comes from a meta (shape-only) build and cannot run');
    }
    if ((y !== null) !== (this._numClasses !== null)) {
      throw new Error(`UNetModel: y must be given if and only if the model is class-conditional (num_classes ${this._numClasses})`);
    }
    if (x.ndim !== 4 || x.shape[1] !== this.config.in_channels) {
      throw new RangeError(`UNetModel: expected x of shape [B, ${this.config.in_channels}, H, W], got [${x.shape}]`);
    }
    const B = x.shape[0];
    if (timesteps.ndim !== 1 || timesteps.shape[0] !== B) throw new RangeError(`UNetModel: timesteps must be [${B}], got [${timesteps.shape}]`);
    let emb = this.time_embed.forward(timestepEmbedding(timesteps, this.config.model_channels));
    if (y !== null) {
      if (y.ndim !== 1 || y.shape[0] !== B) throw new RangeError(`UNetModel: y must be [${B}], got [${y.shape}]`);
      emb = T.add(emb, this.label_emb!.forward(y));
    }
    const hs: T.Tensor[] = [];
    let h = x;
    for (const blk of this.input_blocks) {
      const hin = h;
      h = T.tidy(() => blk.forward(hin, emb, context)); // block temporaries are released as soon as it returns
      hs.push(h);
    }
    const hmid = h;
    h = T.tidy(() => this.middle_block.forward(hmid, emb, context));
    for (const blk of this.output_blocks) {
      const hin = T.concat([h, hs.pop()!], 1);
      h = T.tidy(() => blk.forward(hin, emb, context));
    }
    if (this.id_predictor) return this.id_predictor.forward(h);
    h = groupNormSilu(this.out[0], h, UNET_GN_GROUPS, UNET_GN_EPS);
    return this.out[2].forward(h);
  }
}
