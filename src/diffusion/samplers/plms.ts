// PLMS (pseudo linear multistep, Liu et al. 2022) as ldm/models/diffusion/plms.py: the DDIM update
// driven by an Adams–Bashforth combination of past ε; the first step is a pseudo improved-Euler step
// (two model calls). The history keeps the raw ε of the last ≤ 3 steps.

import * as T from '../../engine/index.js';
import { ddimNoiseTo, ddimStartIndex, ddimStep, makeDDIMSchedule } from './ddim.js';
import { checkLatent, stepLoop, type CommonSampleOptions, type EpsFn, type SampleResult, type SamplerSpec } from './types.js';
import type { DDIMDiscretize, DDIMSchedule } from '../schedules.js';

export interface PLMSOptions extends CommonSampleOptions {
  steps: number;
  /** Must be 0 (the reference raises otherwise). */
  eta?: number;
  discretize?: DDIMDiscretize;
  /** Start at this DDIM index instead of the top (img2img). */
  startIndex?: number;
}

export function plmsSample(eps: EpsFn, alphasCumprod: ArrayLike<number>, opts: PLMSOptions): SampleResult & { schedule: DDIMSchedule } {
  checkLatent(opts.xT, 'PLMS');
  if ((opts.eta ?? 0) !== 0) throw new RangeError(`PLMS: eta must be 0 (got ${opts.eta}); use DDIM for a stochastic sampler`);
  const s = makeDDIMSchedule(alphasCumprod, opts.steps, 0, opts.discretize ?? 'uniform');
  const n = s.timesteps.length;
  const start = opts.startIndex ?? n - 1;
  if (!Number.isInteger(start) || start < -1 || start >= n) throw new RangeError(`PLMS: startIndex ${start} outside 0…${n - 1}`);
  const total = start + 1;
  const timeRange = Array.from({ length: total }, (_, i) => s.timesteps[start - i]);
  const old: T.Tensor[] = [];
  let nfe = 0;
  try {
    const r = T.noGrad(() =>
      stepLoop(opts.xT, total, opts.onStep, (x, i) => {
        const index = start - i;
        const t = timeRange[i];
        const tNext = timeRange[Math.min(i + 1, total - 1)];
        const xin = opts.blend ? opts.blend(x, t) : x;
        const e = eps(xin, t);
        nfe++;
        let ePrime: T.Tensor;
        if (old.length === 0) {
          const first = ddimStep(s, index, xin, e);
          const eNext = eps(first.x, tNext);
          nfe++;
          ePrime = T.div(T.add(e, eNext), 2);
        } else if (old.length === 1) {
          ePrime = T.div(T.sub(T.mul(e, 3), old[0]), 2);
        } else if (old.length === 2) {
          ePrime = T.div(T.add(T.sub(T.mul(e, 23), T.mul(old[1], 16)), T.mul(old[0], 5)), 12);
        } else {
          const [o3, o2, o1] = old;
          ePrime = T.div(T.sub(T.add(T.sub(T.mul(e, 55), T.mul(o1, 59)), T.mul(o2, 37)), T.mul(o3, 9)), 24);
        }
        const out = ddimStep(s, index, xin, ePrime);
        old.push(T.keep(e));
        if (old.length > 3) old.shift()!.dispose();
        return { ...out, t };
      }),
    );
    return { ...r, nfe, schedule: s };
  } finally {
    for (const o of old) o.dispose();
  }
}

export const plms: SamplerSpec = {
  name: 'plms',
  description: 'PLMS pseudo linear multistep (Liu et al. 2022; ldm/models/diffusion/plms.py), eta must be 0',
  options: ['steps', 'discretize'],
  stochastic: false,
  defaults: { discretize: 'uniform' },
  create(m, st) {
    if ((st.eta ?? 0) !== 0) throw new RangeError(`PLMS: eta must be 0 (got ${st.eta}); use DDIM for a stochastic sampler`);
    const s = makeDDIMSchedule(m.buffers.alphas_cumprod, st.steps, 0, st.discretize ?? 'uniform');
    return {
      name: 'plms',
      timesteps: [...s.timesteps].reverse(),
      noiseTo(x0, strength, z) {
        const start = ddimStartIndex(s, strength);
        return { x: ddimNoiseTo(s, start, x0, z), start };
      },
      sample: (eps, xT, o = {}) =>
        plmsSample(eps, m.buffers.alphas_cumprod, { xT, steps: st.steps, discretize: st.discretize, onStep: o.onStep, blend: o.blend, startIndex: o.start }),
    };
  },
};
