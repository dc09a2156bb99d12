// Noise schedules (util.make_beta_schedule / DDPM.register_schedule) and the DDIM sub-schedules
// (make_ddim_timesteps / make_ddim_sampling_parameters), with the reference's precision:
// betas and their cumulative products in float64, every stored buffer rounded to float32, DDIM
// sigmas computed in float64 from the float32 ᾱ and used as float32.

export type BetaSchedule = 'linear' | 'cosine' | 'sqrt_linear' | 'sqrt';
export type DDIMDiscretize = 'uniform' | 'quad';

const f32 = Math.fround;

/** torch.linspace in float64 (fills the first half from start, the second half from end). */
export function linspace64(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
  return out;
}

/** The betas of a schedule, float64 (make_beta_schedule). `linear` is linear in sqrt(beta). */
export function makeBetaSchedule(schedule: BetaSchedule, n: number, linearStart = 1e-4, linearEnd = 2e-2, cosineS = 8e-3): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`makeBetaSchedule: timesteps must be a positive integer, got ${n}`);
  switch (schedule) {
    case 'linear':
      return linspace64(Math.sqrt(linearStart), Math.sqrt(linearEnd), n).map((v) => v * v);
    case 'cosine': {
      const a = new Float64Array(n + 1);
      for (let i = 0; i <= n; i++) {
        const t = i / n + cosineS;
        const c = Math.cos(((t / (1 + cosineS)) * Math.PI) / 2);
        a[i] = c * c;
      }
      const a0 = a[0];
      for (let i = 0; i <= n; i++) a[i] /= a0;
      const betas = new Float64Array(n);
      for (let i = 0; i < n; i++) betas[i] = Math.min(Math.max(1 - a[i + 1] / a[i], 0), 0.999);
      return betas;
    }
    case 'sqrt_linear':
      return linspace64(linearStart, linearEnd, n);
    case 'sqrt':
      return linspace64(linearStart, linearEnd, n).map(Math.sqrt);
    default:
      throw new RangeError(`makeBetaSchedule: unknown schedule '${schedule as string}' (linear, cosine, sqrt_linear, sqrt)`);
  }
}

/** The DDPM buffers, float32 as stored in checkpoints (names = state-dict keys). */
export interface ScheduleBuffers {
  betas: Float32Array;
  alphas_cumprod: Float32Array;
  alphas_cumprod_prev: Float32Array;
  sqrt_alphas_cumprod: Float32Array;
  sqrt_one_minus_alphas_cumprod: Float32Array;
  log_one_minus_alphas_cumprod: Float32Array;
  sqrt_recip_alphas_cumprod: Float32Array;
  sqrt_recipm1_alphas_cumprod: Float32Array;
  posterior_variance: Float32Array;
  posterior_log_variance_clipped: Float32Array;
  posterior_mean_coef1: Float32Array;
  posterior_mean_coef2: Float32Array;
}

export const SCHEDULE_BUFFER_NAMES: readonly (keyof ScheduleBuffers)[] = [
  'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod', 'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod', 'sqrt_recipm1_alphas_cumprod', 'posterior_variance',
  'posterior_log_variance_clipped', 'posterior_mean_coef1', 'posterior_mean_coef2',
];

export interface ScheduleConfig {
  beta_schedule?: BetaSchedule;
  timesteps?: number;
  linear_start?: number;
  linear_end?: number;
  cosine_s?: number;
  v_posterior?: number;
  given_betas?: ArrayLike<number> | null;
}

/**
 * register_schedule: every buffer computed in float64 from the float64 betas, then rounded to float32; and the
 * lvlb_weights of both parameterizations, in float32 as the reference computes them (index 0 copies index 1):
 *   eps: β² / (2·σ²_post·α·(1 − ᾱ))        x0: ½·√ᾱ / (2 − ᾱ)   (written `2. * 1 - ᾱ` in ddpm.py)
 */
export function registerSchedule(cfg: ScheduleConfig = {}): ScheduleBuffers & { lvlb_weights_eps: Float32Array; lvlb_weights_x0: Float32Array } {
  const betas = cfg.given_betas
    ? Float64Array.from(cfg.given_betas)
    : makeBetaSchedule(cfg.beta_schedule ?? 'linear', cfg.timesteps ?? 1000, cfg.linear_start ?? 1e-4, cfg.linear_end ?? 2e-2, cfg.cosine_s ?? 8e-3);
  const v = cfg.v_posterior ?? 0;
  const n = betas.length;
  const ac = new Float64Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) ac[i] = p *= 1 - betas[i];
  const acPrev = new Float64Array(n);
  for (let i = 0; i < n; i++) acPrev[i] = i === 0 ? 1 : ac[i - 1];
  const map = (fn: (i: number) => number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = fn(i);
    return out;
  };
  const postVar = (i: number) => ((1 - v) * betas[i] * (1 - acPrev[i])) / (1 - ac[i]) + v * betas[i];
  const bufs: ScheduleBuffers = {
    betas: map((i) => betas[i]),
    alphas_cumprod: map((i) => ac[i]),
    alphas_cumprod_prev: map((i) => acPrev[i]),
    sqrt_alphas_cumprod: map((i) => Math.sqrt(ac[i])),
    sqrt_one_minus_alphas_cumprod: map((i) => Math.sqrt(1 - ac[i])),
    log_one_minus_alphas_cumprod: map((i) => Math.log(1 - ac[i])),
    sqrt_recip_alphas_cumprod: map((i) => Math.sqrt(1 / ac[i])),
    sqrt_recipm1_alphas_cumprod: map((i) => Math.sqrt(1 / ac[i] - 1)),
    posterior_variance: map(postVar),
    posterior_log_variance_clipped: map((i) => Math.log(Math.max(postVar(i), 1e-20))),
    posterior_mean_coef1: map((i) => (betas[i] * Math.sqrt(acPrev[i])) / (1 - ac[i])),
    posterior_mean_coef2: map((i) => ((1 - acPrev[i]) * Math.sqrt(1 - betas[i])) / (1 - ac[i])),
  };
  // lvlb_weights (eps parameterization) are computed from the float32 buffers, in float32.
  const lvlb = map((i) => {
    const b = bufs.betas[i];
    return f32(f32(b * b) / f32(f32(f32(2 * bufs.posterior_variance[i]) * f32(1 - betas[i])) * f32(1 - bufs.alphas_cumprod[i])));
  });
  const lvlbX0 = map((i) => {
    const a = bufs.alphas_cumprod[i];
    return f32(f32(0.5 * f32(Math.sqrt(a))) / f32(2 - a));
  });
  if (n > 1) {
    lvlb[0] = lvlb[1];
    lvlbX0[0] = lvlbX0[1];
  }
  return { ...bufs, lvlb_weights_eps: lvlb, lvlb_weights_x0: lvlbX0 };
}

// ---- DDIM ---------------------------------------------------------------------------------------------

function uniformTimesteps(steps: number, T: number): number[] {
  const c = Math.floor(T / steps);
  const out: number[] = [];
  for (let t = 0; t < T; t += c) out.push(t + 1);
  return out;
}

/** Whether make_ddim_timesteps('uniform', steps, T) stays inside [0, T) (the reference crashes otherwise). */
export function ddimStepCountWorks(steps: number, T = 1000): boolean {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) return false;
  return uniformTimesteps(steps, T).at(-1)! < T;
}

/**
 * make_ddim_timesteps: 'uniform' → arange(0, T, T // S) + 1 (so S=50 gives 1, 21, …, 981; S values that do
 * not divide T give ceil(T / (T // S)) steps, as in the reference); 'quad' → int(linspace(0, sqrt(0.8 T), S)²) + 1.
 * Step counts for which the reference would index ᾱ[T] are rejected with the nearest counts that work.
 */
export function ddimTimesteps(method: DDIMDiscretize, steps: number, T = 1000): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`DDIM: the number of steps must be a positive integer, got ${steps}`);
  if (method === 'uniform') {
    if (steps > T) throw new RangeError(`DDIM: ${steps} steps is more than the model's ${T} diffusion timesteps`);
    const ts = uniformTimesteps(steps, T);
    if (ts.at(-1)! >= T) {
      let lo = steps - 1;
      while (lo >= 1 && !ddimStepCountWorks(lo, T)) lo--;
      let hi = steps + 1;
      while (hi <= T && !ddimStepCountWorks(hi, T)) hi++;
      const near = [lo >= 1 ? lo : null, hi <= T ? hi : null].filter((x) => x !== null).join(' or ');
      throw new RangeError(
        `DDIM: ${steps} steps would use timestep ${ts.at(-1)} (stride ${Math.floor(T / steps)} + 1 offset), past the last of the ` +
        `model's ${T} timesteps; the original code fails there too. Step counts that work near ${steps}: ${near}` +
        ` (any count whose stride ${T}//S does not divide ${T - 1} works, e.g. 10, 20, 25, 50, 100, 200, 250).`,
      );
    }
    return ts;
  }
  if (method === 'quad') {
    const stop = Math.sqrt(T * 0.8);
    const out: number[] = [];
    const step = steps > 1 ? stop / (steps - 1) : 0;
    for (let i = 0; i < steps; i++) {
      const v = i === steps - 1 && steps > 1 ? stop : i * step;
      out.push(Math.trunc(v * v) + 1);
    }
    return out;
  }
  throw new RangeError(`DDIM: unknown discretization '${method as string}' (uniform or quad)`);
}

/** Per-DDIM-step coefficients, float32 as the reference uses them (torch.full with the default dtype). */
export interface DDIMSchedule {
  /** UNet timesteps, ascending: timesteps[i] belongs to index i; sampling runs i = n-1 … 0. */
  timesteps: number[];
  alphas: Float32Array;
  alphas_prev: Float32Array;
  sigmas: Float32Array;
  sqrt_one_minus_alphas: Float32Array;
}

/**
 * make_ddim_sampling_parameters: a = ᾱ[ts], a_prev = [ᾱ[0], ᾱ[ts[:-1]]] (the last step goes to ᾱ[0], not 1),
 * sigma = eta·sqrt((1-a_prev)/(1-a)·(1-a/a_prev)), with the reference's float32/float64 mix.
 */
export function ddimSchedule(alphasCumprod: ArrayLike<number>, timesteps: number[], eta: number): DDIMSchedule {
  const n = timesteps.length;
  const T = alphasCumprod.length;
  for (const t of timesteps) {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new RangeError(`DDIM: timestep ${t} is outside the schedule's ${T} timesteps`);
  }
  const alphas = new Float32Array(n), alphasPrev = new Float32Array(n), sigmas = new Float32Array(n), s1m = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = f32(alphasCumprod[timesteps[i]]);
    const ap = f32(i === 0 ? alphasCumprod[0] : alphasCumprod[timesteps[i - 1]]);
    alphas[i] = a;
    alphasPrev[i] = ap;
    // (1 - ap) / (1 - a): torch computes 1/(1-a) in float32 (1 - a is a float32 tensor), the rest in float64.
    const r = f32(1 / f32(1 - a));
    sigmas[i] = eta * Math.sqrt(r * (1 - ap) * (1 - a / ap));
    s1m[i] = f32(Math.sqrt(f32(1 - a)));
  }
  return { timesteps: [...timesteps], alphas, alphas_prev: alphasPrev, sigmas, sqrt_one_minus_alphas: s1m };
}

/** The DDIM step coefficients in float32 arithmetic, as the reference evaluates them per step. */
export function ddimStepCoefficients(s: DDIMSchedule, index: number): { sqrtOneMinusAt: number; sqrtAt: number; sqrtAprev: number; dirCoef: number; sigma: number } {
  const at = s.alphas[index], ap = s.alphas_prev[index], sigma = s.sigmas[index];
  return {
    sqrtOneMinusAt: s.sqrt_one_minus_alphas[index],
    sqrtAt: f32(Math.sqrt(at)),
    sqrtAprev: f32(Math.sqrt(ap)),
    dirCoef: f32(Math.sqrt(f32(f32(1 - ap) - f32(sigma * sigma)))),
    sigma,
  };
}
