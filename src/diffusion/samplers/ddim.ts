// DDIM (Song et al. 2021) exactly as ldm/models/diffusion/ddim.py computes it:
//   pred_x0 = (x − sqrt(1−a_t)·ε) / sqrt(a_t)            (never clamped)
//   x_prev  = sqrt(a_prev)·pred_x0 + sqrt(1 − a_prev − σ²)·ε + σ·z·temperature
// over timesteps [1, 1+c, 1+2c, …] taken in reverse, the last step going to ᾱ[0].

import * as T from '../../engine/index.js';
import { checkLatent, checkStrength, stepLoop, type CommonSampleOptions, type EpsFn, type SampleResult, type SamplerSpec } from './types.js';
import { ddimSchedule, ddimStepCoefficients, ddimTimesteps, type DDIMDiscretize, type DDIMSchedule } from '../schedules.js';
import type { NoiseFn } from '../noise.js';

export interface DDIMOptions extends CommonSampleOptions {
  steps: number;
  eta?: number;
  discretize?: DDIMDiscretize;
  temperature?: number;
  /**
   * Start at this DDIM index instead of the top (img2img: the latent must already be noised to
   * ᾱ at that index, see ddimNoiseTo). Runs indices startIndex … 0.
   */
  startIndex?: number;
}

export function makeDDIMSchedule(alphasCumprod: ArrayLike<number>, steps: number, eta = 0, discretize: DDIMDiscretize = 'uniform'): DDIMSchedule {
  return ddimSchedule(alphasCumprod, ddimTimesteps(discretize, steps, alphasCumprod.length), eta);
}

/** One DDIM update from index `index` given ε (float32 arithmetic like the reference). */
export function ddimStep(s: DDIMSchedule, index: number, x: T.Tensor, eps: T.Tensor, noise?: NoiseFn, temperature = 1): { x: T.Tensor; predX0: T.Tensor } {
  const c = ddimStepCoefficients(s, index);
  const predX0 = T.div(T.sub(x, T.mul(eps, c.sqrtOneMinusAt)), c.sqrtAt);
  let xPrev = T.add(T.mul(predX0, c.sqrtAprev), T.mul(eps, c.dirCoef));
  if (c.sigma !== 0) {
    if (!noise) throw new Error(`DDIM: eta > 0 needs a noise source (sigma ${c.sigma} at index ${index})`);
    xPrev = T.add(xPrev, T.mul(T.mul(noise(x.shape), c.sigma), temperature));
  }
  return { x: xPrev, predX0 };
}

/** stochastic_encode without the reference's img2img off-by-one: noise x0 to ᾱ at DDIM index `index`. */
export function ddimNoiseTo(s: DDIMSchedule, index: number, x0: T.Tensor, noise: T.Tensor): T.Tensor {
  const sa = Math.fround(Math.sqrt(s.alphas[index]));
  return T.add(T.mul(x0, sa), T.mul(noise, s.sqrt_one_minus_alphas[index]));
}

export function ddimSample(eps: EpsFn, alphasCumprod: ArrayLike<number>, opts: DDIMOptions): SampleResult & { schedule: DDIMSchedule } {
  checkLatent(opts.xT, 'DDIM');
  const s = makeDDIMSchedule(alphasCumprod, opts.steps, opts.eta ?? 0, opts.discretize ?? 'uniform');
  const n = s.timesteps.length;
  const start = opts.startIndex ?? n - 1;
  if (!Number.isInteger(start) || start < -1 || start >= n) throw new RangeError(`DDIM: startIndex ${start} outside 0…${n - 1}`);
  const total = start + 1;
  const r = T.noGrad(() =>
    stepLoop(opts.xT, total, opts.onStep, (x, i) => {
      const index = start - i;
      const t = s.timesteps[index];
      const xin = opts.blend ? opts.blend(x, t) : x;
      const e = eps(xin, t);
      return { ...ddimStep(s, index, xin, e, opts.noise, opts.temperature ?? 1), t };
    }),
  );
  return { ...r, nfe: r.steps, schedule: s };
}

/** img2img: t_enc = floor(strength · steps) steps are run, from DDIM index t_enc − 1, noised to that index's ᾱ. */
export function ddimStartIndex(s: DDIMSchedule, strength: number): number {
  checkStrength(strength);
  return Math.max(1, Math.floor(strength * s.timesteps.length)) - 1;
}

export const ddim: SamplerSpec = {
  name: 'ddim',
  description: 'DDIM (Song et al. 2021; ldm/models/diffusion/ddim.py); eta 0 is deterministic, eta 1 ancestral-like',
  options: ['steps', 'eta', 'discretize'],
  stochastic: (s) => (s.eta ?? 0) !== 0,
  defaults: { eta: 0, discretize: 'uniform' },
  create(m, st) {
    const s = makeDDIMSchedule(m.buffers.alphas_cumprod, st.steps, st.eta ?? 0, st.discretize ?? 'uniform');
    return {
      name: 'ddim',
      timesteps: [...s.timesteps].reverse(),
      noiseTo(x0, strength, z) {
        const start = ddimStartIndex(s, strength);
        return { x: ddimNoiseTo(s, start, x0, z), start };
      },
      sample: (eps, xT, o = {}) =>
        ddimSample(eps, m.buffers.alphas_cumprod, { xT, steps: st.steps, eta: st.eta ?? 0, discretize: st.discretize, noise: o.noise, onStep: o.onStep, blend: o.blend, startIndex: o.start }),
    };
  },
};
