// DDPM ancestral sampling (LatentDiffusion.p_sample / p_sample_loop): for t = T−1 … 0
//   x̂₀ = sqrt(1/ᾱ_t)·x − sqrt(1/ᾱ_t − 1)·ε          (not clamped in latent space)
//   μ  = coef1_t·x̂₀ + coef2_t·x
//   x  = μ + 1[t>0]·exp(½·log σ²_t)·z·temperature
// reading the (possibly checkpoint-loaded) float32 DDPM buffers.

import * as T from '../../engine/index.js';
import { checkLatent, checkStrength, stepLoop, type CommonSampleOptions, type EpsFn, type SampleResult, type SamplerSpec } from './types.js';
import type { ScheduleBuffers } from '../schedules.js';

export type DDPMBuffers = Pick<ScheduleBuffers, 'alphas_cumprod' | 'sqrt_alphas_cumprod' | 'sqrt_one_minus_alphas_cumprod' |
  'sqrt_recip_alphas_cumprod' | 'sqrt_recipm1_alphas_cumprod' | 'posterior_mean_coef1' | 'posterior_mean_coef2' | 'posterior_log_variance_clipped'>;

export interface DDPMOptions extends CommonSampleOptions {
  temperature?: number;
  /** Start at timestep startT−1 instead of T−1 (the reference's start_T). */
  startT?: number;
  /** Clamp x̂₀ to [−1, 1] (pixel-space DDPM does; LatentDiffusion does not). */
  clipDenoised?: boolean;
}

export function ddpmStep(b: DDPMBuffers, t: number, x: T.Tensor, eps: T.Tensor, noise: T.Tensor | null, temperature = 1, clip = false): { x: T.Tensor; predX0: T.Tensor } {
  let predX0 = T.sub(T.mul(x, b.sqrt_recip_alphas_cumprod[t]), T.mul(eps, b.sqrt_recipm1_alphas_cumprod[t]));
  if (clip) predX0 = T.clamp(predX0, -1, 1);
  const mean = T.add(T.mul(predX0, b.posterior_mean_coef1[t]), T.mul(x, b.posterior_mean_coef2[t]));
  if (t === 0 || noise === null) return { x: mean, predX0 };
  const std = Math.fround(Math.exp(Math.fround(0.5 * b.posterior_log_variance_clipped[t])));
  return { x: T.add(mean, T.mul(T.mul(noise, temperature), std)), predX0 };
}

export function ddpmSample(eps: EpsFn, buffers: DDPMBuffers, opts: DDPMOptions): SampleResult {
  checkLatent(opts.xT, 'DDPM');
  const Tn = buffers.sqrt_recip_alphas_cumprod.length;
  const startT = opts.startT ?? Tn;
  if (!Number.isInteger(startT) || startT < 1 || startT > Tn) throw new RangeError(`DDPM: startT ${startT} outside 1…${Tn}`);
  if (!opts.noise) throw new Error('DDPM: ancestral sampling needs a noise source');
  const noise = opts.noise;
  const r = T.noGrad(() =>
    stepLoop(opts.xT, startT, opts.onStep, (x, i) => {
      const t = startT - 1 - i;
      const e = eps(x, t);
      // The reference draws the noise at every step, including t = 0 where it is masked out.
      const z = noise(x.shape);
      const out = ddpmStep(buffers, t, x, e, z, opts.temperature ?? 1, opts.clipDenoised ?? false);
      return { x: opts.blend ? opts.blend(out.x, t) : out.x, predX0: out.predX0, t };
    }),
  );
  return { ...r, nfe: r.steps };
}

/**
 * LatentDiffusion.p_mean_variance takes an x0-parameterized model's output as x̂₀ directly; the DDPM step
 * reads ε, so hand it the ε that gives back that x̂₀. (The reference's DDIM/PLMS/DPM samplers always
 * treat the output as ε, and so do ours.)
 */
export function x0AsEps(b: DDPMBuffers, eps: EpsFn): EpsFn {
  return (x, t) => T.div(T.sub(T.mul(x, b.sqrt_recip_alphas_cumprod[t]), eps(x, t)), b.sqrt_recipm1_alphas_cumprod[t]);
}

export const ddpm: SamplerSpec = {
  name: 'ddpm',
  description: 'DDPM ancestral sampling (Ho et al. 2020; LatentDiffusion.p_sample_loop), every timestep',
  options: [],
  stochastic: true,
  defaults: {},
  create(m) {
    const b = m.buffers, N = b.alphas_cumprod.length;
    return {
      name: 'ddpm',
      timesteps: Array.from({ length: N }, (_, i) => N - 1 - i),
      noiseTo(x0, strength, z) {
        checkStrength(strength);
        const start = Math.max(1, Math.round(strength * N));
        const t = start - 1;
        // q_sample(x0, t) with the float32 buffers
        return { x: T.add(T.mul(x0, b.sqrt_alphas_cumprod[t]), T.mul(z, b.sqrt_one_minus_alphas_cumprod[t])), start };
      },
      sample: (eps, xT, o = {}) =>
        ddpmSample(m.parameterization === 'x0' ? x0AsEps(b, eps) : eps, b, { xT, noise: o.noise, onStep: o.onStep, blend: o.blend, startT: o.start }),
    };
  },
};
