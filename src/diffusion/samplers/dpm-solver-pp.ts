// DPM-Solver++(2M) (Lu et al. 2022) as CompVis/stable-diffusion's DPMSolverSampler runs it:
// NoiseScheduleVP('discrete') over ᾱ (log α_t piecewise linear in t on t_n = (n+1)/N), data prediction
// (predict_x0), multistep order 2, time-uniform steps from t = 1 to t = 1/N, first step first order,
// and (lower_order_final, the reference default) the last step first order too when steps < 15.
// The UNet sees t_input = (t − 1/N)·1000, generally fractional.

import * as T from '../../engine/index.js';
import { checkLatent, checkStrength, stepLoop, type CommonSampleOptions, type EpsFn, type SampleResult, type SamplerSpec } from './types.js';

/** The VP noise schedule of a discrete-time model in continuous time t ∈ [1/N, 1]. */
export class DiscreteVPSchedule {
  readonly N: number;
  private readonly logAlpha: Float64Array;
  constructor(alphasCumprod: ArrayLike<number>) {
    this.N = alphasCumprod.length;
    this.logAlpha = Float64Array.from(alphasCumprod, (a) => 0.5 * Math.log(a));
  }
  /** log α_t (piecewise linear interpolation, extrapolated linearly outside the knots). */
  logMean(t: number): number {
    const N = this.N, la = this.logAlpha;
    // knots t_n = (n+1)/N
    let k = Math.floor(t * N) - 1;
    k = Math.min(Math.max(k, 0), N - 2);
    const t0 = (k + 1) / N, t1 = (k + 2) / N;
    return la[k] + ((t - t0) * (la[k + 1] - la[k])) / (t1 - t0);
  }
  alpha(t: number): number {
    return Math.exp(this.logMean(t));
  }
  sigma(t: number): number {
    return Math.sqrt(1 - Math.exp(2 * this.logMean(t)));
  }
  lambda(t: number): number {
    const lm = this.logMean(t);
    return lm - 0.5 * Math.log(1 - Math.exp(2 * lm));
  }
  /** The model's (fractional) timestep for continuous time t. */
  modelTime(t: number): number {
    return (t - 1 / this.N) * 1000;
  }
}

export interface DPMSolverOptions extends CommonSampleOptions {
  steps: number;
  /** Start time in (1/N, 1] (img2img: noise to alpha(tStart), sigma(tStart) first); default 1. */
  tStart?: number;
}

/** Time-uniform steps from tStart down to 1/N (steps + 1 points). */
export function dpmTimes(N: number, steps: number, tStart = 1): number[] {
  const t0 = 1 / N;
  return Array.from({ length: steps + 1 }, (_, i) => tStart + ((t0 - tStart) * i) / steps);
}

export function dpmSolverPPSample(eps: EpsFn, alphasCumprod: ArrayLike<number>, opts: DPMSolverOptions): SampleResult {
  checkLatent(opts.xT, 'DPM-Solver++');
  const steps = opts.steps;
  if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`DPM-Solver++(2M): needs at least 2 steps, got ${steps}`);
  const ns = new DiscreteVPSchedule(alphasCumprod);
  const ts = dpmTimes(ns.N, steps, opts.tStart ?? 1);
  const dataPred = (x: T.Tensor, t: number): T.Tensor => {
    const e = eps(x, ns.modelTime(t));
    return T.div(T.sub(x, T.mul(e, ns.sigma(t))), ns.alpha(t));
  };
  let prev: { m: T.Tensor; t: number } | null = null; // model value at the previous-but-one time
  let cur: { m: T.Tensor; t: number } | null = null;
  let nfe = 0;
  try {
    const r = T.noGrad(() =>
      stepLoop(opts.xT, steps, opts.onStep, (x, i) => {
        const xin = opts.blend ? opts.blend(x, Math.round(ns.modelTime(ts[i]))) : x;
        if (cur === null) {
          cur = { m: T.keep(dataPred(xin, ts[0])), t: ts[0] };
          nfe++;
        } else if (xin !== x) {
          // a blended latent invalidates the cached model value
          cur.m.dispose();
          cur = { m: T.keep(dataPred(xin, cur.t)), t: cur.t };
          nfe++;
        }
        const s = cur.t, t = ts[i + 1];
        const h = ns.lambda(t) - ns.lambda(s);
        const phi = Math.expm1(-h);
        const alphaT = ns.alpha(t);
        // x_t = σ_t/σ_s·x − α_t(e^{−h} − 1)·(m_s + ½·D), D = (m_s − m_prev)/r0 (D = 0 on the first step)
        let m = cur.m;
        const lowerOrderFinal = steps < 15 && i === steps - 1;
        if (prev !== null && !lowerOrderFinal) {
          const h0 = ns.lambda(s) - ns.lambda(prev.t);
          const r0 = h0 / h;
          m = T.add(m, T.mul(T.sub(cur.m, prev.m), 0.5 / r0));
        }
        const xNext = T.sub(T.mul(xin, ns.sigma(t) / ns.sigma(s)), T.mul(m, alphaT * phi));
        const predX0 = T.mulScalar(cur.m, 1);
        if (i < steps - 1) {
          prev?.m.dispose();
          prev = cur;
          cur = { m: T.keep(dataPred(xNext, t)), t };
          nfe++;
        }
        return { x: xNext, predX0, t: ns.modelTime(t) };
      }),
    );
    return { ...r, nfe };
  } finally {
    (prev as { m: T.Tensor } | null)?.m.dispose();
    (cur as { m: T.Tensor } | null)?.m.dispose();
  }
}

export const dpmSolverPP: SamplerSpec = {
  name: 'dpm++',
  description: "DPM-Solver++(2M) (Lu et al. 2022) as CompVis/stable-diffusion's DPMSolverSampler: time-uniform steps",
  options: ['steps'],
  stochastic: false,
  defaults: {},
  create(m, st) {
    const ac = m.buffers.alphas_cumprod;
    const ns = new DiscreteVPSchedule(ac);
    if (!Number.isInteger(st.steps) || st.steps < 2) throw new RangeError(`DPM-Solver++(2M): needs at least 2 steps, got ${st.steps}`);
    return {
      name: 'dpm++',
      timesteps: dpmTimes(ns.N, st.steps).slice(0, -1).map((t) => ns.modelTime(t)),
      noiseTo(x0, strength, z) {
        checkStrength(strength);
        // the same steps from t = 1/N + strength·(1 − 1/N), noised to alpha(t), sigma(t) there
        const start = 1 / ns.N + strength * (1 - 1 / ns.N);
        const lm = ns.logMean(start);
        return { x: T.add(T.mul(x0, Math.exp(lm)), T.mul(z, Math.sqrt(1 - Math.exp(2 * lm)))), start };
      },
      sample: (eps, xT, o = {}) => dpmSolverPPSample(eps, ac, { xT, steps: st.steps, onStep: o.onStep, blend: o.blend, tStart: o.start }),
    };
  },
};
