// The k-diffusion view of a discrete-time ε-model (crowsonkb/k-diffusion, k_diffusion/external.py
// CompVisDenoiser + DiscreteSchedule; Karras et al. 2022): noise levels σ_t = sqrt((1 − ᾱ_t)/ᾱ_t), latents
// x = x_vp / sqrt(ᾱ) (so x = x₀ + σ·ε), and the denoiser D(x, σ) = x − σ·ε̂(x/sqrt(σ² + 1), t(σ)) where t(σ)
// interpolates linearly in log σ between the two nearest discrete timesteps (fractional UNet timesteps).

import * as T from '../../engine/index.js';
import type { EpsFn } from './types.js';

export type SigmaSchedule = 'default' | 'karras' | 'exponential';
export const SIGMA_SCHEDULES: readonly SigmaSchedule[] = ['default', 'karras', 'exponential'];

/** A denoiser in σ: (x, σ) → D(x, σ) ≈ x₀, and the UNet timestep it used. */
export type Denoiser = (x: T.Tensor, sigma: number) => T.Tensor;

export class KSchedule {
  /** σ of every discrete timestep 0..N−1 (increasing) and their logs, in float64. */
  readonly sigmas: Float64Array;
  readonly logSigmas: Float64Array;
  constructor(alphasCumprod: ArrayLike<number>) {
    this.sigmas = Float64Array.from(alphasCumprod, (a) => Math.sqrt((1 - a) / a));
    this.logSigmas = this.sigmas.map(Math.log);
  }
  get sigmaMin(): number {
    return this.sigmas[0];
  }
  get sigmaMax(): number {
    return this.sigmas[this.sigmas.length - 1];
  }

  /** DiscreteSchedule.sigma_to_t (not quantized): fractional timestep of σ, clamped to [0, N−1]. */
  sigmaToT(sigma: number): number {
    const ls = Math.log(sigma), L = this.logSigmas, n = L.length;
    // low = the last index whose log σ ≤ log sigma (0 when none), at most n − 2
    let cnt = 0;
    for (let i = 0; i < n; i++) if (ls - L[i] >= 0) cnt++;
    const low = Math.min(Math.max(cnt - 1, 0), n - 2);
    const w = Math.min(Math.max((L[low] - ls) / (L[low] - L[low + 1]), 0), 1);
    return (1 - w) * low + w * (low + 1);
  }

  /** DiscreteSchedule.t_to_sigma: log σ interpolated at a fractional timestep. */
  tToSigma(t: number): number {
    const lo = Math.floor(t), hi = Math.ceil(t), w = t - lo;
    return Math.exp((1 - w) * this.logSigmas[lo] + w * this.logSigmas[hi]);
  }

  /**
   * n noise levels from σ_max down to σ_min, then 0 (n + 1 values): 'default' = get_sigmas(n) (timesteps
   * linspace(N−1, 0, n)), 'karras' = get_sigmas_karras (ρ = 7), 'exponential' = get_sigmas_exponential.
   */
  getSigmas(n: number, schedule: SigmaSchedule = 'default', rho = 7): number[] {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`k-diffusion sigmas: need at least 1 step, got ${n}`);
    const ramp = (i: number) => (n === 1 ? 0 : i / (n - 1));
    const out: number[] = [];
    const lo = this.sigmaMin, hi = this.sigmaMax;
    for (let i = 0; i < n; i++) {
      if (schedule === 'default') out.push(this.tToSigma((this.sigmas.length - 1) * (1 - ramp(i))));
      else if (schedule === 'karras') out.push((hi ** (1 / rho) + ramp(i) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho);
      else if (schedule === 'exponential') out.push(Math.exp(Math.log(hi) + ramp(i) * (Math.log(lo) - Math.log(hi))));
      else throw new RangeError(`unknown sigma schedule ${schedule as string} (${SIGMA_SCHEDULES.join(', ')})`);
    }
    out.push(0);
    return out;
  }

  /** CompVisDenoiser around an ε function: D(x, σ) = x − σ·ε(x/sqrt(σ² + 1), t(σ)). */
  denoiser(eps: EpsFn, onCall?: (t: number) => void): Denoiser {
    return (x, sigma) => {
      const t = this.sigmaToT(sigma);
      onCall?.(t);
      const e = eps(T.mulScalar(x, 1 / Math.sqrt(sigma * sigma + 1)), t);
      return T.sub(x, T.mulScalar(e, sigma));
    };
  }
}

/** to_d: the Karras ODE derivative (x − D)/σ. */
export function toD(x: T.Tensor, sigma: number, denoised: T.Tensor): T.Tensor {
  return T.mulScalar(T.sub(x, denoised), 1 / sigma);
}

/** get_ancestral_step: the level to step down to and the noise to add (η scales the noise). */
export function ancestralStep(from: number, to: number, eta = 1): { down: number; up: number } {
  if (!eta) return { down: to, up: 0 };
  const up = Math.min(to, eta * Math.sqrt((to * to * (from * from - to * to)) / (from * from)));
  return { down: Math.sqrt(to * to - up * up), up };
}
