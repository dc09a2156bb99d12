// LatentDiffusion (ldm/models/diffusion/ddpm.py): the denoising UNet (`model.diffusion_model`), the
// first stage (`first_stage_model`), the conditioning encoder (`cond_stage_model`) and the DDPM schedule
// buffers, under the reference's state-dict names.
//
//   latent  z = scale_factor · E(x)            (KL: posterior sample, VQ: pre-quantization latent)
//   image   x = D(z / scale_factor)            (VQ decode quantizes first)
//   ε̂ = UNet(x_t, t, conditioning)  with conditioning_key
//        None: unet(x, t)      concat: unet(cat[x, c…], t)      crossattn: unet(x, t, context = cat(c…, seq))
//        hybrid: both          adm: unet(x, t, y = c)
//   training loss  mean(‖ε − ε̂(sqrt(ᾱ_t)x₀ + sqrt(1−ᾱ_t)ε, t, c)‖) per sample (l2: squared, l1: absolute)
// EMA weights are chosen at load time (loadCheckpointInto with { ema: true } reads `model_ema.*`).

import * as T from '../engine/index.js';
import { Buffer, Module, Parameter } from '../nn/index.js';
import type { Params } from '../io/config.js';
import { DiagonalGaussianDistribution } from '../models/autoencoder/distribution.js';
import { FIRST_STAGE } from '../models/first-stage.js';
import type { UNetModel } from '../models/unet/unet.js';
import type { UNetBuildOptions } from '../models/unet/build.js';
import type { Conditioning, CondDict } from './guidance.js';
import { registerSchedule, SCHEDULE_BUFFER_NAMES, type BetaSchedule, type ScheduleBuffers } from './schedules.js';
import { tiledApply, type SplitInputParams } from './tiling.js';

export type ConditioningKey = 'concat' | 'crossattn' | 'hybrid' | 'adm' | null;

/** What the first stage offers (AutoencoderKL, VQModelInterface, Identity). */
export interface FirstStage extends Module {
  encode?(x: T.Tensor): T.Tensor | DiagonalGaussianDistribution | unknown;
  decode?(z: T.Tensor, forceNotQuantize?: boolean): T.Tensor;
  forward?(x: T.Tensor): T.Tensor;
}

/** DiffusionWrapper: routes the conditioning into the UNet according to conditioning_key. */
export class DiffusionWrapper extends Module {
  constructor(public diffusion_model: UNetModel, readonly _conditioningKey: ConditioningKey) {
    super();
  }

  forward(x: T.Tensor, t: T.Tensor, cConcat: T.Tensor[] | null = null, cCrossattn: T.Tensor[] | null = null): T.Tensor {
    const need = (what: string, l: T.Tensor[] | null): T.Tensor[] => {
      if (!l || l.length === 0) throw new Error(`LatentDiffusion (conditioning_key ${this._conditioningKey}): ${what} conditioning is missing`);
      return l;
    };
    switch (this._conditioningKey) {
      case null:
        return this.diffusion_model.forward(x, t);
      case 'concat':
        return this.diffusion_model.forward(T.concat([x, ...need('concat', cConcat)], 1), t);
      case 'crossattn':
        return this.diffusion_model.forward(x, t, T.concat(need('cross-attention', cCrossattn), 1));
      case 'hybrid':
        return this.diffusion_model.forward(T.concat([x, ...need('concat', cConcat)], 1), t, T.concat(need('cross-attention', cCrossattn), 1));
      case 'adm':
        return this.diffusion_model.forward(x, t, null, need('class (adm)', cCrossattn)[0]);
    }
  }
}

export interface LatentDiffusionConfig {
  timesteps: number;
  beta_schedule: BetaSchedule;
  linear_start: number;
  linear_end: number;
  cosine_s: number;
  given_betas: number[] | null;
  v_posterior: number;
  parameterization: 'eps' | 'x0';
  loss_type: 'l1' | 'l2';
  l_simple_weight: number;
  original_elbo_weight: number;
  learn_logvar: boolean;
  logvar_init: number;
  conditioning_key: ConditioningKey;
  cond_stage_key: string;
  first_stage_key: string;
  cond_stage_trainable: boolean;
  scale_factor: number;
  scale_by_std: boolean;
  use_ema: boolean;
  image_size: number;
  channels: number;
}

export class LatentDiffusion extends Module {
  model: DiffusionWrapper;
  first_stage_model: FirstStage;
  cond_stage_model: Module | null;
  betas!: Buffer;
  alphas_cumprod!: Buffer;
  alphas_cumprod_prev!: Buffer;
  sqrt_alphas_cumprod!: Buffer;
  sqrt_one_minus_alphas_cumprod!: Buffer;
  log_one_minus_alphas_cumprod!: Buffer;
  sqrt_recip_alphas_cumprod!: Buffer;
  sqrt_recipm1_alphas_cumprod!: Buffer;
  posterior_variance!: Buffer;
  posterior_log_variance_clipped!: Buffer;
  posterior_mean_coef1!: Buffer;
  posterior_mean_coef2!: Buffer;
  lvlb_weights: Buffer;
  /** A buffer only with scale_by_std (stored in the checkpoint); otherwise the config value in _scaleFactor. */
  scale_factor: Buffer | null = null;
  logvar: Parameter | null = null;
  readonly config: LatentDiffusionConfig;
  private readonly _scaleFactor: number;

  constructor(cfg: LatentDiffusionConfig, unet: UNetModel, firstStage: FirstStage, condStage: Module | null) {
    super();
    this.config = cfg;
    this.model = new DiffusionWrapper(unet, cfg.conditioning_key);
    this.first_stage_model = firstStage;
    this.cond_stage_model = condStage;
    const s = registerSchedule({
      beta_schedule: cfg.beta_schedule, timesteps: cfg.timesteps, linear_start: cfg.linear_start, linear_end: cfg.linear_end,
      cosine_s: cfg.cosine_s, v_posterior: cfg.v_posterior, given_betas: cfg.given_betas,
    });
    for (const name of SCHEDULE_BUFFER_NAMES) (this as unknown as Record<string, Buffer>)[name] = new Buffer(T.tensor(s[name]));
    this.lvlb_weights = new Buffer(T.tensor(cfg.parameterization === 'x0' ? s.lvlb_weights_x0 : s.lvlb_weights_eps), false);
    this._scaleFactor = cfg.scale_factor;
    if (cfg.scale_by_std) this.scale_factor = new Buffer(T.tensor(new Float32Array([cfg.scale_factor]), []));
    if (cfg.learn_logvar) this.logvar = new Parameter(T.full([cfg.timesteps], cfg.logvar_init));
  }

  get numTimesteps(): number {
    return this.config.timesteps;
  }
  get conditioningKey(): ConditioningKey {
    return this.config.conditioning_key;
  }
  /** The (possibly checkpoint-loaded) scale factor. */
  get scaleFactor(): number {
    return this.scale_factor ? this.scale_factor.item() : this._scaleFactor;
  }

  /** The schedule buffers as float32 arrays (checkpoint values once loaded). */
  schedule(): ScheduleBuffers {
    const out = {} as Record<keyof ScheduleBuffers, Float32Array>;
    for (const name of SCHEDULE_BUFFER_NAMES) out[name] = T.contiguousData((this as unknown as Record<string, Buffer>)[name]) as Float32Array;
    return out;
  }

  /** Downsampling factor of the first stage (2^(levels−1)). */
  get firstStageFactor(): number {
    const dd = (this.first_stage_model as unknown as { _ddconfig?: { ch_mult: number[] } })._ddconfig;
    return dd ? 2 ** (dd.ch_mult.length - 1) : 1;
  }

  /** How much the UNet downsamples (latent sizes must be multiples of it). */
  get unetFactor(): number {
    const cfg = this.model.diffusion_model.config;
    return 2 ** ((cfg.channel_mult ?? [1, 2, 4, 8]).length - 1);
  }

  // ---- first stage -----------------------------------------------------------------------------------

  /** `tiling` (with patch_distributed_vq) encodes overlapping crops, as the reference's split_input_params. */
  encodeFirstStage(x: T.Tensor, opts: { tiling?: SplitInputParams | null } = {}): T.Tensor | DiagonalGaussianDistribution {
    const fs = this.first_stage_model;
    const enc = (xx: T.Tensor) => (fs.encode ? fs.encode(xx) : fs.forward!(xx)) as T.Tensor | DiagonalGaussianDistribution;
    const sp = opts.tiling;
    if (sp && sp.patch_distributed_vq) {
      // Tiles in pixel space; each crop's latent is blended (a KL posterior contributes its moments).
      const moments = (xx: T.Tensor) => {
        const e = enc(xx);
        return e instanceof DiagonalGaussianDistribution ? e.parameters : (e as T.Tensor);
      };
      const probe = enc(T.slice(T.slice(x, 2, 0, Math.min(sp.ks[0], x.shape[2])), 3, 0, Math.min(sp.ks[1], x.shape[3])));
      const blended = tiledApply(x, sp, 1 / sp.vqf, (crop) => moments(crop));
      return probe instanceof DiagonalGaussianDistribution ? new DiagonalGaussianDistribution(blended) : blended;
    }
    return enc(x);
  }

  /** scale_factor · (posterior sample | latent); `noise` fixes the KL posterior draw. */
  getFirstStageEncoding(enc: T.Tensor | DiagonalGaussianDistribution, noise?: T.Tensor | T.Generator): T.Tensor {
    const z = enc instanceof DiagonalGaussianDistribution ? enc.sample(noise) : enc;
    return T.mul(z, this.scaleFactor);
  }

  decodeFirstStage(z: T.Tensor, opts: { forceNotQuantize?: boolean; tiling?: SplitInputParams | null } = {}): T.Tensor {
    const zz = T.mul(z, 1 / this.scaleFactor);
    const fs = this.first_stage_model;
    const dec = (v: T.Tensor) => (fs.decode ? fs.decode(v, opts.forceNotQuantize ?? false) : fs.forward!(v));
    const sp = opts.tiling;
    if (sp && sp.patch_distributed_vq) return tiledApply(zz, sp, sp.vqf, (crop) => dec(crop));
    return dec(zz);
  }

  // ---- conditioning ------------------------------------------------------------------------------------

  /** cond_stage_model.encode(c) (mode of a Gaussian) or cond_stage_model(c). */
  getLearnedConditioning(c: unknown): T.Tensor {
    const m = this.cond_stage_model as (Module & { encode?: (c: unknown) => unknown; forward?: (c: unknown) => unknown }) | null;
    if (!m) throw new Error('LatentDiffusion: this model is unconditional (cond_stage_config __is_unconditional__)');
    const out = typeof m.encode === 'function' ? m.encode(c) : m.forward!(c);
    if (out instanceof DiagonalGaussianDistribution) return out.mode();
    if (!(out instanceof T.Tensor)) throw new Error(`LatentDiffusion: the conditioning encoder ${m.constructor.name} did not return a tensor`);
    return out;
  }

  // ---- the denoiser -------------------------------------------------------------------------------------

  /** apply_model: ε̂ for x_noisy [B, C, h, w] at timesteps t [B] (a number is broadcast); `tiling` runs it over overlapping crops. */
  applyModel(xNoisy: T.Tensor, t: T.Tensor | number, cond: Conditioning, opts: { tiling?: SplitInputParams | null } = {}): T.Tensor {
    const tt = typeof t === 'number' ? T.full([xNoisy.shape[0]], t) : t;
    let d: CondDict;
    if (cond === null) d = {};
    else if (cond instanceof T.Tensor) d = this.conditioningKey === 'concat' ? { c_concat: [cond] } : { c_crossattn: [cond] };
    else d = cond;
    const run = (x: T.Tensor, dd: CondDict) => this.model.forward(x, tt, dd.c_concat ?? null, dd.c_crossattn ?? null);
    const sp = opts.tiling;
    if (!sp) return run(xNoisy, d);
    // Spatial conditionings (concat) are cropped with the same windows; others are shared by all crops.
    const spatial = ['image', 'LR_image', 'segmentation', 'bbox_img', 'masked_image'].includes(this.config.cond_stage_key) && this.conditioningKey !== null;
    const cc = spatial ? d.c_concat ?? [] : [];
    return tiledApply(xNoisy, sp, 1, (crop, extra) => run(crop, spatial ? { ...d, c_concat: extra } : d), cc);
  }

  /** q_sample: sqrt(ᾱ_t)·x₀ + sqrt(1−ᾱ_t)·noise, t [B] integer timesteps. */
  qSample(x0: T.Tensor, t: T.Tensor | number, noise: T.Tensor): T.Tensor {
    const ts = typeof t === 'number' ? new Array<number>(x0.shape[0]).fill(t) : t.toArray();
    const s = this.schedule();
    const shape = [x0.shape[0], ...new Array<number>(x0.ndim - 1).fill(1)];
    const a = T.tensor(Float32Array.from(ts, (i) => s.sqrt_alphas_cumprod[i]), shape);
    const b = T.tensor(Float32Array.from(ts, (i) => s.sqrt_one_minus_alphas_cumprod[i]), shape);
    return T.add(T.mul(a, x0), T.mul(b, noise));
  }

  /**
   * LatentDiffusion.p_losses for latents x0, conditioning (already encoded), integer timesteps t [B] and noise:
   *   loss_simple = mean_{c,h,w} |target − out|^(1 or 2)   (target: noise for eps, x0 for x0)   → [B]
   *   loss_gamma  = mean(loss_simple / e^logvar[t] + logvar[t])
   *   loss        = l_simple_weight · loss_gamma + original_elbo_weight · mean(lvlb_weights[t] · loss_simple)
   * `log` is the reference's loss dict: `<split>/loss_simple`, `<split>/loss_vlb`, `<split>/loss`, and with a learned
   * logvar `<split>/loss_gamma` and `logvar` (its mean over all timesteps, no prefix).
   */
  pLosses(x0: T.Tensor, cond: Conditioning, t: T.Tensor, noise: T.Tensor, split = 'train'): { loss: T.Tensor; lossSimple: T.Tensor; lossVlb: T.Tensor; log: Record<string, number> } {
    const cfg = this.config;
    const xNoisy = this.qSample(x0, t, noise);
    const out = this.applyModel(xNoisy, t, cond);
    const target = cfg.parameterization === 'eps' ? noise : x0;
    const diff = T.sub(target, out);
    const per = T.mean(cfg.loss_type === 'l2' ? T.square(diff) : T.abs(diff), [1, 2, 3]); // [B]
    const ts = t.toArray();
    let gamma: T.Tensor;
    if (this.logvar) {
      const lv = T.indexSelect(this.logvar, 0, T.tensor(ts, [ts.length], 'int32'));
      gamma = T.mean(T.add(T.div(per, T.exp(lv)), lv));
    } else if (cfg.logvar_init !== 0) {
      // The reference's logvar is a float32 tensor filled with logvar_init: divide by its float32 exponential.
      const lv = Math.fround(cfg.logvar_init);
      gamma = T.mean(T.addScalar(T.div(per, T.full([1], Math.fround(Math.exp(lv)))), lv));
    } else {
      gamma = T.mean(per);
    }
    let loss = T.mul(gamma, cfg.l_simple_weight);
    const lvlb = T.contiguousData(this.lvlb_weights) as Float32Array;
    const lossVlb = T.mean(T.mul(T.tensor(Float32Array.from(ts, (i) => lvlb[i]), [ts.length]), per));
    if (cfg.original_elbo_weight !== 0) loss = T.add(loss, T.mul(lossVlb, cfg.original_elbo_weight));
    const lossSimple = T.mean(per);
    const log: Record<string, number> = { [`${split}/loss_simple`]: lossSimple.item() };
    if (this.logvar) {
      log[`${split}/loss_gamma`] = gamma.item();
      log.logvar = T.noGrad(() => T.mean(this.logvar!)).item();
    }
    log[`${split}/loss_vlb`] = lossVlb.item();
    log[`${split}/loss`] = loss.item();
    return { loss, lossSimple, lossVlb, log };
  }
}

// ---- building from a config ----------------------------------------------------------------------------

/** The LatentDiffusion row of the targets table: reads `model.params` of an official config. */
export function buildLatentDiffusion(p: Params, _path = '', _opts: UNetBuildOptions = {}): LatentDiffusion {
  const timesteps = p.int('timesteps', 1000);
  const condCfgRaw = p.get('cond_stage_config');
  const unconditional = condCfgRaw === '__is_unconditional__';
  let conditioningKey: ConditioningKey;
  if (p.has('conditioning_key')) conditioningKey = p.oneOf('conditioning_key', ['concat', 'crossattn', 'hybrid', 'adm'] as const);
  else {
    p.get('conditioning_key');
    conditioningKey = p.bool('concat_mode', true) ? 'concat' : 'crossattn';
  }
  p.bool('concat_mode', true);
  if (unconditional) conditioningKey = null;
  const condTrainable = p.bool('cond_stage_trainable', false);
  const parameterization = p.oneOf('parameterization', ['eps', 'x0'] as const, 'eps');
  const numCond = p.int('num_timesteps_cond', 1);
  if (numCond !== 1) throw new Error(`${p.path}.num_timesteps_cond: only 1 is supported (a shortened conditioning schedule noises the conditioning in training), got ${numCond}`);
  if (p.has('cond_stage_forward')) throw new Error(`${p.path}.cond_stage_forward: a custom conditioning method is not supported`);
  p.get('cond_stage_forward');
  if (p.bool('use_positional_encodings', false)) throw new Error(`${p.path}.use_positional_encodings: not supported (no released model uses it)`);
  const givenBetas = p.has('given_betas') ? p.numbers('given_betas') : (p.get('given_betas'), null);
  const cfg: LatentDiffusionConfig = {
    timesteps,
    beta_schedule: p.oneOf('beta_schedule', ['linear', 'cosine', 'sqrt_linear', 'sqrt'] as const, 'linear'),
    linear_start: p.number('linear_start', 1e-4),
    linear_end: p.number('linear_end', 2e-2),
    cosine_s: p.number('cosine_s', 8e-3),
    given_betas: givenBetas,
    v_posterior: p.number('v_posterior', 0),
    parameterization,
    loss_type: p.oneOf('loss_type', ['l1', 'l2'] as const, 'l2'),
    l_simple_weight: p.number('l_simple_weight', 1),
    original_elbo_weight: p.number('original_elbo_weight', 0),
    learn_logvar: p.bool('learn_logvar', false),
    logvar_init: p.number('logvar_init', 0),
    conditioning_key: conditioningKey,
    cond_stage_key: p.string('cond_stage_key', 'image'),
    first_stage_key: p.string('first_stage_key', 'image'),
    cond_stage_trainable: condTrainable,
    scale_factor: p.number('scale_factor', 1),
    scale_by_std: p.bool('scale_by_std', false),
    use_ema: p.bool('use_ema', true),
    image_size: p.int('image_size', 256),
    channels: p.int('channels', 3),
  };
  // Training / logging settings without effect on the network.
  p.ignore('log_every_t', 'monitor', 'clip_denoised', 'scheduler_config', 'ckpt_path', 'ignore_keys', 'load_only_unet');
  const unet = p.instantiate<UNetModel>('unet_config');
  const firstStage = p.instantiate<FirstStage>('first_stage_config');
  let cond: Module | null;
  if (unconditional) cond = null;
  else {
    const c = p.instantiate<unknown>('cond_stage_config');
    if (c === FIRST_STAGE) {
      if (condTrainable) throw new Error(`${p.path}.cond_stage_trainable: __is_first_stage__ cannot be trainable`);
      cond = firstStage;
    } else if (c === null) cond = null;
    else if (c instanceof Module) cond = c;
    else throw new Error(`${p.path}.cond_stage_config: built something that is not a module`);
  }
  return new LatentDiffusion(cfg, unet, firstStage, cond);
}
