// Heun (k_diffusion/sampling.py sample_heun; Karras et al. 2022, Algorithm 2): an Euler step to σ_{i+1}, then
// the average of the slopes at both ends; the last step (to σ = 0) is plain Euler. Two model calls per step
// except the last.

import type { EpsFn, SampleResult } from './types.js';
import { churn, type ChurnOptions } from './k-euler.js';
import { eulerUpdate, kLoop, kSpec, type KSampleOptions } from './k-loop.js';
import * as T from '../../engine/index.js';
import { toD, type KSchedule } from './k-schedule.js';

export function kHeunSample(eps: EpsFn, ks: KSchedule, o: KSampleOptions & ChurnOptions): SampleResult {
  return kLoop('Heun', eps, ks, o, (x0, i, D) => {
    const { x, sigmaHat } = churn(x0, o.sigmas, i, o, o, 'Heun');
    const next = o.sigmas[i + 1];
    const denoised = D(x, sigmaHat);
    const d = toD(x, sigmaHat, denoised);
    const dt = next - sigmaHat;
    if (next === 0) return { x: eulerUpdate(x, d, dt), denoised };
    const x2 = eulerUpdate(x, d, dt);
    const d2 = toD(x2, next, D(x2, next));
    return { x: eulerUpdate(x, T.mulScalar(T.add(d, d2), 0.5), dt), denoised };
  });
}

export const heun = kSpec('heun', "Heun's second-order method (Karras et al. 2022, k-diffusion sample_heun), two model calls per step", kHeunSample, { stochastic: false, options: ['steps', 'schedule'] });
