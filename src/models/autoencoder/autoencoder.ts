// The first-stage models (ldm/models/autoencoder.py).
//
// AutoencoderKL(ddconfig, embed_dim):
//   quant_conv = conv1×1(2z → 2·embed_dim), post_quant_conv = conv1×1(embed_dim → z)
//   encode(x) = DiagonalGaussianDistribution(quant_conv(encoder(x)));  decode(z) = decoder(post_quant_conv(z))
// VQModel(ddconfig, n_embed, embed_dim):
//   quant_conv = conv1×1(z → embed_dim), post_quant_conv = conv1×1(embed_dim → z), quantize = VectorQuantizer2
//   encode(x) = quantize(quant_conv(encoder(x)))  (quant, loss, indices);  decode(q) = decoder(post_quant_conv(q))
// VQModelInterface (what every LDM config uses): encode(x) = quant_conv(encoder(x)) — the continuous,
//   pre-quantization latent; decode(h) quantizes first unless force_not_quantize.
// `loss` is whatever lossconfig builds (Identity inside LDM configs; LPIPSWithDiscriminator / VQLPIPS... when training).

import * as T from '../../engine/index.js';
import { Buffer, Layer, Module } from '../../nn/index.js';
import { Builder, isMeta, param, type BuildOptions } from '../../nn/build.js';
import { DiagonalGaussianDistribution } from './distribution.js';
import { Decoder, Encoder, scoped, type DDConfig } from './model.js';
import { VectorQuantizer2, type QuantizeResult } from './quantize.js';

/** Options common to the first-stage constructors (beyond ddconfig and the sizes). */
export interface FirstStageOptions extends BuildOptions {
  /** The module built from lossconfig (Identity, a perceptual loss, ...); null for none. */
  loss?: Module | null;
  /** `colorize_nlabels`: adds the random `colorize` buffer [3, n, 1, 1] used to display segmentation inputs. */
  colorizeNLabels?: number | null;
  /** `ckpt_path` / `ignore_keys` of the config: recorded; initFromCkpt() of src/loader loads them. */
  ckptPath?: string | null;
  ignoreKeys?: string[];
}

abstract class FirstStageBase extends Module {
  encoder: Encoder;
  decoder: Decoder;
  loss: Module | null;
  colorize: Buffer | null = null;
  readonly ckptPath: string | null;
  readonly ignoreKeys: string[];

  constructor(readonly _ddconfig: DDConfig, opts: FirstStageOptions) {
    super();
    this.encoder = new Encoder(_ddconfig, opts);
    this.decoder = new Decoder(_ddconfig, opts);
    this.loss = opts.loss ?? null;
    if (opts.colorizeNLabels != null) {
      const t = opts.meta ? new T.Tensor(new T.Storage(new Float32Array(0)), [3, opts.colorizeNLabels, 1, 1]) : T.randn([3, opts.colorizeNLabels, 1, 1], opts.gen);
      this.colorize = new Buffer(t);
    }
    this.ckptPath = opts.ckptPath ?? null;
    this.ignoreKeys = opts.ignoreKeys ?? [];
  }

  /** The decoder's last conv weight (the GAN losses balance their gradients on it). */
  getLastLayer(): T.Tensor {
    return param(this.decoder.conv_out, 'weight');
  }

  /** Whether this model came from a shape-only build. */
  get isMeta(): boolean {
    return isMeta(this.getLastLayer());
  }
}

export class AutoencoderKL extends FirstStageBase {
  quant_conv: Layer;
  post_quant_conv: Layer;

  constructor(ddconfig: DDConfig, readonly _embedDim: number, opts: FirstStageOptions = {}) {
    super(ddconfig, opts);
    if (!ddconfig.double_z) throw new RangeError('AutoencoderKL: ddconfig.double_z must be true (the encoder outputs mean and log-variance)');
    const b = new Builder(opts);
    this.quant_conv = b.conv2d(2 * ddconfig.z_channels, 2 * _embedDim, 1);
    this.post_quant_conv = b.conv2d(_embedDim, ddconfig.z_channels, 1);
  }

  /** x [B, 3, H, W] in [-1, 1] → posterior over z [B, embed_dim, H/f, W/f]. */
  encode(x: T.Tensor): DiagonalGaussianDistribution {
    return new DiagonalGaussianDistribution(scoped(() => this.quant_conv.forward(this.encoder.forward(x))));
  }

  /** z [B, embed_dim, h, w] → image [B, out_ch, h·f, w·f]. */
  decode(z: T.Tensor): T.Tensor {
    return scoped(() => this.decoder.forward(this.post_quant_conv.forward(z)));
  }

  /** Reconstruction: decode(posterior.sample(noise)) or decode(posterior.mode()). */
  forward(x: T.Tensor, samplePosterior = true, noise?: T.Tensor | T.Generator): { dec: T.Tensor; posterior: DiagonalGaussianDistribution } {
    const posterior = this.encode(x);
    const z = samplePosterior ? posterior.sample(noise) : posterior.mode();
    return { dec: this.decode(z), posterior };
  }
}

abstract class VQBase extends FirstStageBase {
  quantize: VectorQuantizer2;
  quant_conv: Layer;
  post_quant_conv: Layer;

  constructor(ddconfig: DDConfig, readonly _nEmbed: number, readonly _embedDim: number, opts: FirstStageOptions & { saneIndexShape?: boolean } = {}) {
    super(ddconfig, opts);
    const b = new Builder(opts);
    this.quantize = new VectorQuantizer2(_nEmbed, _embedDim, 0.25, true, opts.saneIndexShape ?? false, opts);
    this.quant_conv = b.conv2d(ddconfig.z_channels, _embedDim, 1);
    this.post_quant_conv = b.conv2d(_embedDim, ddconfig.z_channels, 1);
  }

  /** Continuous latent before quantization: quant_conv(encoder(x)). */
  encodeToPrequant(x: T.Tensor): T.Tensor {
    return scoped(() => this.quant_conv.forward(this.encoder.forward(x)));
  }

  /** Decode codebook indices [B, h, w] (the reference's decode_code is broken; this is what it means). */
  decodeCode(indices: T.Tensor): T.Tensor {
    if (indices.ndim !== 3) throw new RangeError(`decodeCode: expected indices [B, h, w], got [${indices.shape}]`);
    const [B, h, w] = indices.shape;
    return this.decodeQuant(this.quantize.getCodebookEntry(indices, [B, h, w, this._embedDim]));
  }

  protected decodeQuant(quant: T.Tensor): T.Tensor {
    return scoped(() => this.decoder.forward(this.post_quant_conv.forward(quant)));
  }
}

/** VQModel: encode quantizes (training / reconstruction interface). */
export class VQModel extends VQBase {
  encode(x: T.Tensor): QuantizeResult {
    return this.quantize.forward(this.encodeToPrequant(x));
  }
  decode(quant: T.Tensor): T.Tensor {
    return this.decodeQuant(quant);
  }
  forward(x: T.Tensor): { dec: T.Tensor; diff: T.Tensor; indices: T.Tensor } {
    const { quant, loss, indices } = this.encode(x);
    return { dec: this.decode(quant), diff: loss, indices };
  }
}

/** VQModelInterface: the LDM first stage — latents are pre-quantization, decode quantizes. */
export class VQModelInterface extends VQBase {
  encode(x: T.Tensor): T.Tensor {
    return this.encodeToPrequant(x);
  }
  decode(h: T.Tensor, forceNotQuantize = false): T.Tensor {
    if (forceNotQuantize) return this.decodeQuant(h);
    return scoped(() => this.decodeQuant(this.quantize.forward(h).quant));
  }
}
