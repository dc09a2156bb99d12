// Euler (k_diffusion/sampling.py sample_euler; Karras et al. 2022, Algorithm 2 with Euler steps):
//   σ̂ = σ_i(1 + γ), γ = min(s_churn/steps, √2 − 1) for σ_i in [s_tmin, s_tmax]; with γ > 0, x += z·s_noise·sqrt(σ̂² − σ_i²)
//   d = (x − D(x, σ̂))/σ̂,  x ← x + d·(σ_{i+1} − σ̂)
// (the reference draws z every step even when γ = 0; here only when it is used).

import * as T from '../../engine/index.js';
import type { EpsFn, SampleResult } from './types.js';
import { eulerUpdate, kLoop, kSpec, requireNoise, type KSampleOptions } from './k-loop.js';
import { toD, type KSchedule } from './k-schedule.js';

export interface ChurnOptions {
  s_churn?: number;
  s_tmin?: number;
  s_tmax?: number;
  s_noise?: number;
}

/** σ̂ and the churned latent (Karras' stochastic "churn"; none by default). */
export function churn(x: T.Tensor, sigmas: readonly number[], i: number, c: ChurnOptions, o: KSampleOptions, who: string): { x: T.Tensor; sigmaHat: number } {
  const s = sigmas[i];
  const inRange = (c.s_tmin ?? 0) <= s && s <= (c.s_tmax ?? Infinity);
  const gamma = inRange ? Math.min((c.s_churn ?? 0) / (sigmas.length - 1), Math.SQRT2 - 1) : 0;
  const sigmaHat = s * (gamma + 1);
  if (gamma > 0) x = T.add(x, T.mulScalar(requireNoise(who, o)(x.shape), (c.s_noise ?? 1) * Math.sqrt(sigmaHat ** 2 - s ** 2)));
  return { x, sigmaHat };
}

export function kEulerSample(eps: EpsFn, ks: KSchedule, o: KSampleOptions & ChurnOptions): SampleResult {
  return kLoop('Euler', eps, ks, o, (x0, i, D) => {
    const { x, sigmaHat } = churn(x0, o.sigmas, i, o, o, 'Euler');
    const denoised = D(x, sigmaHat);
    return { x: eulerUpdate(x, toD(x, sigmaHat, denoised), o.sigmas[i + 1] - sigmaHat), denoised };
  });
}

export const euler = kSpec('euler', 'Euler (Karras et al. 2022, k-diffusion sample_euler), deterministic, one model call per step', kEulerSample, { stochastic: false, options: ['steps', 'schedule'] });
