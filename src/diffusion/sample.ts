// Sampling a LatentDiffusion: the ε function (apply_model behind classifier-free guidance) handed to
// the chosen sampler, from a given or seeded x_T.

import * as T from '../engine/index.js';
import { ddimSample } from './ddim.js';
import { ddpmSample } from './ddpm.js';
import { DiscreteVPSchedule, dpmSolverPPSample } from './dpm-solver-pp.js';
import { guidedEps, type Conditioning } from './guidance.js';
import type { LatentDiffusion } from './latent-diffusion.js';
import { seededNoise, type NoiseFn } from './noise.js';
import { plmsSample } from './plms.js';
import type { EpsFn, SampleResult, StepCallback } from './sampler.js';
import { ddimSchedule, ddimTimesteps, type DDIMDiscretize } from './schedules.js';

export type SamplerName = 'ddim' | 'plms' | 'dpm++' | 'ddpm';
export const SAMPLERS: readonly SamplerName[] = ['ddim', 'plms', 'dpm++', 'ddpm'];

export interface LatentSampleOptions {
  sampler: SamplerName;
  /** Sampler steps (DDPM always runs every timestep from startT). */
  steps: number;
  eta?: number;
  discretize?: DDIMDiscretize;
  /** Guidance scale (1 = none). */
  scale?: number;
  cond: Conditioning;
  uncond?: Conditioning;
  /** Latent shape [B, C, h, w]; or give xT. */
  shape?: number[];
  xT?: T.Tensor;
  /** Seed for x_T (when not given) and the per-step noise. */
  seed?: number;
  noise?: NoiseFn;
  onStep?: StepCallback;
  /** img2img: how far to noise (0 < strength ≤ 1) an initial latent x0 before denoising. */
  init?: { x0: T.Tensor; strength: number };
  /** Latent inpainting (the reference's mask/x0): keep x0 where mask = 1. */
  latentMask?: { mask: T.Tensor; x0: T.Tensor };
}

export interface LatentSampleResult extends SampleResult {
  /** The starting latent actually used (x_T, or the noised init latent). */
  start: T.Tensor;
}

/** ε̂(x, t) of the model with conditioning and guidance. */
export function modelEps(model: LatentDiffusion, cond: Conditioning, uncond: Conditioning | undefined, scale: number): EpsFn {
  return guidedEps((x, t, c) => model.applyModel(x, t, c), cond, uncond, scale);
}

export function sampleLatents(model: LatentDiffusion, o: LatentSampleOptions): LatentSampleResult {
  const noise = o.noise ?? seededNoise(o.seed ?? 0);
  const eps = modelEps(model, o.cond, o.uncond, o.scale ?? 1);
  const ac = model.schedule().alphas_cumprod;
  const eta = o.eta ?? 0;
  if (o.sampler === 'plms' && eta !== 0) throw new Error(`the PLMS sampler needs eta = 0 (got ${eta})`);
  const blend = o.latentMask ? latentBlend(model, o.latentMask.mask, o.latentMask.x0, noise) : undefined;
  let xT: T.Tensor;
  let startIndex: number | undefined;
  let tStart: number | undefined;
  let startT: number | undefined;
  if (o.init) {
    const { x0, strength } = o.init;
    if (!(strength > 0 && strength <= 1)) throw new RangeError(`img2img strength must be in (0, 1], got ${strength}`);
    const z = noise(x0.shape);
    if (o.sampler === 'ddim' || o.sampler === 'plms') {
      // Noise to the level of the first step actually run (index t_enc − 1), not one above it.
      const n = ddimCount(ac.length, o.steps, o.discretize);
      const tEnc = Math.max(1, Math.floor(strength * n));
      startIndex = tEnc - 1;
      const s = ddimParams(ac, o.steps, eta, o.discretize);
      const a = Math.fround(Math.sqrt(s.alphas[startIndex]));
      xT = T.add(T.mul(x0, a), T.mul(z, s.sqrt_one_minus_alphas[startIndex]));
    } else if (o.sampler === 'dpm++') {
      const N = ac.length;
      tStart = 1 / N + strength * (1 - 1 / N);
      const lm = logMeanAt(ac, tStart);
      xT = T.add(T.mul(x0, Math.exp(lm)), T.mul(z, Math.sqrt(1 - Math.exp(2 * lm))));
    } else {
      startT = Math.max(1, Math.round(strength * ac.length));
      xT = model.qSample(x0, startT - 1, z);
    }
  } else if (o.xT) {
    xT = o.xT;
  } else {
    if (!o.shape) throw new Error('sampleLatents: give shape or xT');
    xT = noise(o.shape);
  }
  let r: SampleResult;
  switch (o.sampler) {
    case 'ddim':
      r = ddimSample(eps, ac, { xT, steps: o.steps, eta, discretize: o.discretize, noise, onStep: o.onStep, blend, startIndex });
      break;
    case 'plms':
      r = plmsSample(eps, ac, { xT, steps: o.steps, discretize: o.discretize, onStep: o.onStep, blend, startIndex });
      break;
    case 'dpm++':
      r = dpmSolverPPSample(eps, ac, { xT, steps: o.steps, onStep: o.onStep, blend, tStart });
      break;
    case 'ddpm':
      r = ddpmSample(model.config.parameterization === 'x0' ? x0AsEps(model, eps) : eps, model.schedule(), { xT, noise, onStep: o.onStep, blend, startT });
      break;
    default:
      throw new Error(`unknown sampler ${o.sampler as string} (${SAMPLERS.join(', ')})`);
  }
  return { ...r, start: xT };
}

/**
 * LatentDiffusion.p_mean_variance takes an x0-parameterized model's output as x̂₀ directly; the DDPM step
 * reads ε, so hand it the ε that gives back that x̂₀. (The reference's DDIM/PLMS/DPM samplers always
 * treat the output as ε, and so do ours.)
 */
function x0AsEps(model: LatentDiffusion, eps: EpsFn): EpsFn {
  const s = model.schedule();
  return (x, t) => T.div(T.sub(T.mul(x, s.sqrt_recip_alphas_cumprod[t]), eps(x, t)), s.sqrt_recipm1_alphas_cumprod[t]);
}

/** x ← q_sample(x0, t)·mask + (1 − mask)·x (mask = 1 where x0 is kept). */
function latentBlend(model: LatentDiffusion, mask: T.Tensor, x0: T.Tensor, noise: NoiseFn) {
  return (x: T.Tensor, t: number) => {
    const known = model.qSample(x0, t, noise(x0.shape));
    return T.add(T.mul(known, mask), T.mul(x, T.sub(1, mask)));
  };
}

function ddimCount(T_: number, steps: number, d: DDIMDiscretize = 'uniform'): number {
  return ddimTimesteps(d, steps, T_).length;
}
function ddimParams(ac: Float32Array, steps: number, eta: number, d: DDIMDiscretize = 'uniform') {
  return ddimSchedule(ac, ddimTimesteps(d, steps, ac.length), eta);
}
function logMeanAt(ac: Float32Array, t: number): number {
  return new DiscreteVPSchedule(ac).logMean(t);
}
