// What the k-diffusion samplers share: their options and the step loop (one memory scope per step, the
// callback sees the latent after the step and the denoised estimate D(x, σ_i) as the x₀ prediction).

import * as T from '../../engine/index.js';
import { checkLatent, checkStrength, stepLoop, type EpsFn, type SampleResult, type SamplerOption, type SamplerSettings, type SamplerSpec, type StepCallback } from './types.js';
import type { NoiseFn } from '../noise.js';
import { KSchedule, type Denoiser, type SigmaSchedule } from './k-schedule.js';

export interface KSampleOptions {
  /** Start latent, already at noise level sigmas[0] (x = σ₀·z for text-to-image, x₀ + σ₀·z for img2img). */
  x: T.Tensor;
  /** Noise levels, decreasing, the last one 0 (steps + 1 values). */
  sigmas: readonly number[];
  noise?: NoiseFn;
  onStep?: StepCallback;
  /** Applied to the latent before each step at level σ (latent inpainting: keep x₀ + σ·z where the mask is 1). */
  blend?: (x: T.Tensor, sigma: number) => T.Tensor;
}

export interface KStep {
  x: T.Tensor;
  denoised: T.Tensor;
}

/** Runs `step(x, i, D)` for i = 0 … steps−1, counting model calls. */
export function kLoop(
  who: string,
  eps: EpsFn,
  ks: KSchedule,
  o: KSampleOptions,
  step: (x: T.Tensor, i: number, denoise: Denoiser) => KStep,
): SampleResult {
  checkLatent(o.x, who);
  const s = o.sigmas;
  if (s.length < 2 || s.at(-1) !== 0 || s.some((v, i) => i > 0 && !(v < s[i - 1]))) {
    throw new RangeError(`${who}: sigmas must decrease strictly and end in 0, got [${s.map((v) => v.toPrecision(4)).join(', ')}]`);
  }
  let nfe = 0;
  const denoise = ks.denoiser(eps, () => nfe++);
  const r = T.noGrad(() =>
    stepLoop(o.x, s.length - 1, o.onStep, (x, i) => {
      const xin = o.blend ? o.blend(x, s[i]) : x;
      const out = step(xin, i, denoise);
      return { x: out.x, predX0: out.denoised, t: ks.sigmaToT(s[i]) };
    }),
  );
  return { ...r, nfe };
}

/** x + d·dt */
export function eulerUpdate(x: T.Tensor, d: T.Tensor, dt: number): T.Tensor {
  return T.add(x, T.mulScalar(d, dt));
}

export function requireNoise(who: string, o: KSampleOptions): NoiseFn {
  if (!o.noise) throw new Error(`${who}: this stochastic sampler needs a noise source`);
  return o.noise;
}

export type KRun = (eps: EpsFn, ks: KSchedule, o: KSampleOptions & SamplerSettings) => SampleResult;

/**
 * A registry row for a k-diffusion sampler: noise levels from the settings' schedule (or a fixed one),
 * text-to-image from x = σ₀·x_T, img2img (as k-diffusion front ends do) from x₀ + σ_s·z with
 * s = steps − floor(strength·steps), so floor(strength·steps) steps are run.
 */
export function kSpec(name: string, description: string, run: KRun, o: { stochastic: boolean; options: SamplerOption[]; schedule?: SigmaSchedule }): SamplerSpec {
  return {
    name,
    description,
    options: o.options,
    stochastic: o.stochastic,
    defaults: { ...(o.options.includes('eta') ? { eta: 1, s_noise: 1 } : {}), ...(o.options.includes('schedule') ? { schedule: 'default' as const } : {}) },
    create(m, st) {
      const ks = new KSchedule(m.buffers.alphas_cumprod);
      if (m.parameterization !== 'eps') throw new Error(`${name}: the k-diffusion samplers need an ε-prediction model (this one predicts ${m.parameterization})`);
      if (!Number.isInteger(st.steps) || st.steps < 1) throw new RangeError(`${name}: steps must be a positive integer, got ${st.steps}`);
      const sigmas = ks.getSigmas(st.steps, o.schedule ?? st.schedule ?? 'default');
      return {
        name,
        timesteps: sigmas.slice(0, -1).map((s) => ks.sigmaToT(s)),
        noiseTo(x0, strength, z) {
          checkStrength(strength);
          const start = st.steps - Math.max(1, Math.floor(strength * st.steps));
          return { x: T.add(x0, T.mulScalar(z, sigmas[start])), start };
        },
        sample(eps, xT, r = {}) {
          const from = r.start ?? 0;
          const x = r.start === undefined ? T.mulScalar(xT, sigmas[0]) : xT;
          // the blend hook works on VP latents at integer timesteps: x_vp = x/sqrt(σ² + 1)
          const blend = r.blend
            ? (v: T.Tensor, s: number) => {
                const c = Math.sqrt(s * s + 1);
                return T.mulScalar(r.blend!(T.mulScalar(v, 1 / c), Math.round(ks.sigmaToT(s))), c);
              }
            : undefined;
          try {
            return run(eps, ks, { ...st, x, sigmas: sigmas.slice(from), noise: r.noise, onStep: r.onStep, blend });
          } finally {
            if (x !== xT) x.dispose();
          }
        },
      };
    },
  };
}
