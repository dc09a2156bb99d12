// DPM++ SDE (k_diffusion/sampling.py sample_dpmpp_sde, r = 1/2): per step an ancestral half step to
// s = t + h·r, a second model call there, then an ancestral full step with D' = (1 − 1/(2r))·D + 1/(2r)·D₂
// (t = −log σ, get_ancestral_step with η for both noises); the step to σ = 0 is plain Euler. The reference
// draws its noise from a Brownian tree; here each noise is a fresh standard normal draw of the noise source.

import * as T from '../../engine/index.js';
import type { EpsFn, SampleResult } from './types.js';
import type { AncestralOptions } from './k-euler-ancestral.js';
import { eulerUpdate, kLoop, kSpec, requireNoise, type KSampleOptions } from './k-loop.js';
import { ancestralStep, toD, type KSchedule } from './k-schedule.js';

export function kDpmppSdeSample(eps: EpsFn, ks: KSchedule, o: KSampleOptions & AncestralOptions & { r?: number }): SampleResult {
  const eta = o.eta ?? 1, sNoise = o.s_noise ?? 1, r = o.r ?? 0.5;
  const sigmaFn = (t: number) => Math.exp(-t), tFn = (sg: number) => -Math.log(sg);
  const addNoise = (x: T.Tensor, up: number) => (up > 0 ? T.add(x, T.mulScalar(requireNoise('DPM++ SDE', o)(x.shape), sNoise * up)) : x);
  return kLoop('DPM++ SDE', eps, ks, o, (x, i, D) => {
    const sg = o.sigmas[i], next = o.sigmas[i + 1];
    const denoised = D(x, sg);
    if (next === 0) return { x: eulerUpdate(x, toD(x, sg, denoised), next - sg), denoised };
    const t = tFn(sg), tNext = tFn(next);
    const h = tNext - t, s = t + h * r, fac = 1 / (2 * r);
    // step 1: to s
    const a1 = ancestralStep(sigmaFn(t), sigmaFn(s), eta);
    const s_ = tFn(a1.down);
    let x2 = T.sub(T.mulScalar(x, sigmaFn(s_) / sigmaFn(t)), T.mulScalar(denoised, Math.expm1(t - s_)));
    x2 = addNoise(x2, a1.up);
    const denoised2 = D(x2, sigmaFn(s));
    // step 2: to t_next
    const a2 = ancestralStep(sigmaFn(t), sigmaFn(tNext), eta);
    const tNext_ = tFn(a2.down);
    const dd = T.add(T.mulScalar(denoised, 1 - fac), T.mulScalar(denoised2, fac));
    const y = T.sub(T.mulScalar(x, sigmaFn(tNext_) / sigmaFn(t)), T.mulScalar(dd, Math.expm1(t - tNext_)));
    return { x: addNoise(y, a2.up), denoised };
  });
}

export const dpmppSde = kSpec('dpm++sde', 'DPM++ SDE (k-diffusion sample_dpmpp_sde, r = 1/2): two model calls per step, fresh noise (eta, s_noise)', kDpmppSdeSample, {
  stochastic: true, options: ['steps', 'schedule', 'eta', 's_noise'],
});
