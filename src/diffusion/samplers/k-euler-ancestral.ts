// Euler ancestral (k_diffusion/sampling.py sample_euler_ancestral): step down to σ_down with Euler, then add
// fresh noise σ_up (get_ancestral_step: σ_up = min(σ_{i+1}, η·sqrt(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²)),
// σ_down = sqrt(σ_{i+1}² − σ_up²)); no noise on the last step to σ = 0.

import * as T from '../../engine/index.js';
import type { EpsFn, SampleResult } from './types.js';
import { eulerUpdate, kLoop, kSpec, requireNoise, type KSampleOptions } from './k-loop.js';
import { ancestralStep, toD, type KSchedule } from './k-schedule.js';

export interface AncestralOptions {
  /** η: 0 = deterministic Euler, 1 = full ancestral noise (default). */
  eta?: number;
  s_noise?: number;
}

export function kEulerAncestralSample(eps: EpsFn, ks: KSchedule, o: KSampleOptions & AncestralOptions): SampleResult {
  const eta = o.eta ?? 1;
  return kLoop('Euler ancestral', eps, ks, o, (x, i, D) => {
    const s = o.sigmas[i], next = o.sigmas[i + 1];
    const denoised = D(x, s);
    const { down, up } = ancestralStep(s, next, eta);
    let y = eulerUpdate(x, toD(x, s, denoised), down - s);
    if (next > 0 && up > 0) y = T.add(y, T.mulScalar(requireNoise('Euler ancestral', o)(x.shape), (o.s_noise ?? 1) * up));
    return { x: y, denoised };
  });
}

export const eulerAncestral = kSpec('euler-a', 'Euler ancestral (k-diffusion sample_euler_ancestral): Euler steps plus fresh noise (eta, default 1; s_noise)', kEulerAncestralSample, {
  stochastic: true, options: ['steps', 'schedule', 'eta', 's_noise'],
});
