// What every sampler shares: the model-function type, step callbacks (which may cancel), the result, the
// step loop, and the Sampler interface the registry (index.ts) hands out.
//
// A sampler sees the denoiser only as `eps(x, t)`: the predicted noise for the batch x at the UNet
// timestep t (an integer for DDPM/DDIM/PLMS, fractional for DPM-Solver). Guidance, conditioning and the
// LatentDiffusion glue live behind that function (see guidance.ts, latent-diffusion.ts).

import * as T from '../../engine/index.js';
import type { NoiseFn } from '../noise.js';
import type { DDIMDiscretize, ScheduleBuffers } from '../schedules.js';
import type { SigmaSchedule } from './k-schedule.js';

export type EpsFn = (x: T.Tensor, t: number) => T.Tensor;

export interface StepInfo {
  /** 0-based step counter and the number of steps this run will take. */
  step: number;
  total: number;
  /** The UNet timestep of this step. */
  t: number;
  /** The latent after this step and the sampler's current prediction of x₀ (valid only during the callback). */
  x: T.Tensor;
  predX0: T.Tensor;
}

/** Called after every step; returning false cancels sampling (the result then has cancelled = true). */
export type StepCallback = (info: StepInfo) => boolean | void;

export interface CommonSampleOptions {
  /** The starting latent x_T (not modified, not disposed). */
  xT: T.Tensor;
  /** Per-step noise (needed when the sampler is stochastic). */
  noise?: NoiseFn;
  onStep?: StepCallback;
  /**
   * Optional hook applied to the latent at timestep t: DDIM/PLMS call it before each step, DDPM after
   * each step (the reference's `mask`/`x0` latent inpainting: x ← q_sample(x0, t)·m + (1−m)·x).
   */
  blend?: (x: T.Tensor, t: number) => T.Tensor;
}

export interface SampleResult {
  x: T.Tensor;
  cancelled: boolean;
  /** Steps taken and model evaluations (a CFG call counts once). */
  steps: number;
  nfe: number;
}

/** Runs one step in a memory scope, hands its outputs to the callback and frees the previous latent. */
export function stepLoop(
  xT: T.Tensor,
  total: number,
  onStep: StepCallback | undefined,
  step: (x: T.Tensor, i: number) => { x: T.Tensor; predX0: T.Tensor; t: number },
): { x: T.Tensor; cancelled: boolean; steps: number } {
  let x = xT;
  for (let i = 0; i < total; i++) {
    const out = T.tidy(() => {
      const r = step(x, i);
      return { x: r.x, predX0: r.predX0, t: r.t };
    });
    if (x !== xT) x.dispose();
    x = out.x;
    const go = onStep ? onStep({ step: i, total, t: out.t, x, predX0: out.predX0 }) : undefined;
    if (out.predX0 !== x) out.predX0.dispose();
    if (go === false) return { x, cancelled: true, steps: i + 1 };
  }
  return { x: x === xT ? T.mulScalar(xT, 1) : x, cancelled: false, steps: total };
}

export function checkLatent(x: T.Tensor, who: string): void {
  if (x.ndim !== 4 || x.dtype !== 'float32') throw new RangeError(`${who}: x_T must be a float32 [B, C, H, W] tensor, got [${x.shape}] ${x.dtype}`);
}

// ---- the sampler interface ------------------------------------------------------------------------------

/** What a sampler reads of the diffusion model: its ᾱ and DDPM buffers, and what the network predicts. */
export interface DiffusionSchedule {
  buffers: ScheduleBuffers;
  parameterization: 'eps' | 'x0';
}

/** The settings a sampler may take (each sampler's `options` lists the ones it reads). */
export interface SamplerSettings {
  /** Sampler steps (DDPM always runs every timestep). */
  steps: number;
  /** DDIM η, or the ancestral noise of Euler ancestral / DPM++ SDE. */
  eta?: number;
  /** DDIM/PLMS timestep spacing. */
  discretize?: DDIMDiscretize;
  /** k-diffusion noise levels: the model's own timesteps, Karras et al.'s ρ = 7 ramp, or log-uniform. */
  schedule?: SigmaSchedule;
  /** Scale of the noise the stochastic k-diffusion samplers add. */
  s_noise?: number;
}
export type SamplerOption = keyof SamplerSettings;

export interface RunOptions {
  noise?: NoiseFn;
  onStep?: StepCallback;
  /** The latent-inpainting hook at UNet timestep t (see CommonSampleOptions.blend). */
  blend?: (x: T.Tensor, t: number) => T.Tensor;
  /** Where to start, as noiseTo returned it (default: the top, from x_T ~ N(0, I)). */
  start?: number;
}

/** A sampler set up for one schedule and settings. */
export interface Sampler {
  readonly name: string;
  /** The UNet timesteps of its steps, in the order they are run (fractional for DPM-Solver and k-diffusion). */
  readonly timesteps: readonly number[];
  /** img2img: noise x₀ (with the standard normal z) to the level of the first step run for this strength in (0, 1]. */
  noiseTo(x0: T.Tensor, strength: number, z: T.Tensor): { x: T.Tensor; start: number };
  /** Denoise x_T ~ N(0, I) (or, with `start`, the latent noiseTo returned). */
  sample(eps: EpsFn, x: T.Tensor, o?: RunOptions): SampleResult;
}

/** One row of the sampler table. */
export interface SamplerSpec {
  readonly name: string;
  readonly description: string;
  /** The settings it reads (the others do not apply to it). */
  readonly options: readonly SamplerOption[];
  /** Whether it draws noise at every step (needs a noise source; results depend on the seed beyond x_T). */
  readonly stochastic: boolean | ((s: SamplerSettings) => boolean);
  /** Values of its settings when not given (recorded with the outputs). */
  readonly defaults: Partial<SamplerSettings>;
  create(schedule: DiffusionSchedule, settings: SamplerSettings): Sampler;
}

export function checkStrength(strength: number): void {
  if (!(strength > 0 && strength <= 1)) throw new RangeError(`img2img strength must be in (0, 1], got ${strength}`);
}
