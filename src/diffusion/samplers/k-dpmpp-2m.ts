// DPM++ 2M (k_diffusion/sampling.py sample_dpmpp_2m; Lu et al. 2022, DPM-Solver++(2M) in t = −log σ):
//   h = t_{i+1} − t_i;  first step and the step to σ = 0:  x ← (σ_{i+1}/σ_i)·x − (e^{−h} − 1)·D_i
//   otherwise r = h_{i−1}/h,  D' = (1 + 1/(2r))·D_i − (1/(2r))·D_{i−1},  x ← (σ_{i+1}/σ_i)·x − (e^{−h} − 1)·D'

import * as T from '../../engine/index.js';
import type { EpsFn, SampleResult } from './types.js';
import { kLoop, kSpec, type KSampleOptions } from './k-loop.js';
import type { KSchedule } from './k-schedule.js';

export function kDpmpp2mSample(eps: EpsFn, ks: KSchedule, o: KSampleOptions): SampleResult {
  const s = o.sigmas;
  let old: T.Tensor | null = null;
  try {
    return kLoop('DPM++ 2M', eps, ks, o, (x, i, D) => {
      const denoised = D(x, s[i]);
      const t = -Math.log(s[i]), tNext = -Math.log(s[i + 1]);
      const h = tNext - t;
      let dd = denoised;
      if (old !== null && s[i + 1] !== 0) {
        const r = (t + Math.log(s[i - 1])) / h;
        dd = T.sub(T.mulScalar(denoised, 1 + 1 / (2 * r)), T.mulScalar(old, 1 / (2 * r)));
      }
      // σ_{i+1}/σ_i = e^{−h}; at σ_{i+1} = 0 this is 0 and the step lands on D
      const y = T.sub(T.mulScalar(x, s[i + 1] / s[i]), T.mulScalar(dd, Math.expm1(-h)));
      old?.dispose();
      old = T.keep(T.mulScalar(denoised, 1));
      return { x: y, denoised };
    });
  } finally {
    (old as T.Tensor | null)?.dispose();
  }
}

export const dpmpp2m = kSpec('dpm++2m', 'DPM++ 2M (k-diffusion sample_dpmpp_2m): second-order multistep in log σ, deterministic', kDpmpp2mSample, { stochastic: false, options: ['steps', 'schedule'] });
export const dpmpp2mKarras = kSpec('dpm++2m-karras', 'DPM++ 2M on Karras et al.\'s noise levels (ρ = 7), the common Stable Diffusion choice', kDpmpp2mSample, {
  stochastic: false, options: ['steps'], schedule: 'karras',
});
