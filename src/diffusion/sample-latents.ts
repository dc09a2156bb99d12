// Sampling a LatentDiffusion: the ε function (apply_model behind classifier-free guidance, optionally over
// overlapping crops) handed to the sampler of the registry (samplers/index.ts), from a given or seeded x_T,
// or (img2img) from an initial latent noised by the sampler.

import * as T from '../engine/index.js';
import { guidedEps, type Conditioning } from './guidance.js';
import type { LatentDiffusion } from './latent-diffusion.js';
import { seededNoise, type NoiseFn } from './noise.js';
import { samplerSpec, type SamplerName } from './samplers/index.js';
import type { EpsFn, SampleResult, SamplerSettings, StepCallback } from './samplers/types.js';
import type { SplitInputParams } from './tiling.js';

export interface LatentSampleOptions extends Partial<SamplerSettings> {
  sampler: SamplerName;
  /** Sampler steps (DDPM always runs every timestep from its start). */
  steps: number;
  /** Guidance scale (1 = none). */
  scale?: number;
  cond: Conditioning;
  /** The unconditional input of guidance (e.g. the embedding of "" or of a negative prompt). */
  uncond?: Conditioning;
  /** Latent shape [B, C, h, w]; or give xT. */
  shape?: number[];
  xT?: T.Tensor;
  /** Seed for x_T (when not given) and the per-step noise. */
  seed?: number;
  noise?: NoiseFn;
  onStep?: StepCallback;
  /** img2img: how far to noise (0 < strength ≤ 1) an initial latent x0 before denoising. */
  init?: { x0: T.Tensor; strength: number };
  /** Latent inpainting (the reference's mask/x0): keep x0 where mask = 1. */
  latentMask?: { mask: T.Tensor; x0: T.Tensor };
  /** Run the UNet over overlapping crops (the reference's split_input_params). */
  tiling?: SplitInputParams | null;
  /**
   * Bytes of packed weights kept from step to step (T.withWeightCache; identical results, more memory).
   * Default T.weightCacheBudget() (LDM_WEIGHT_CACHE_MB; 0 = none).
   */
  weightCacheBytes?: number;
}

export interface LatentSampleResult extends SampleResult {
  /** The starting latent actually used (x_T, or the noised init latent). */
  start: T.Tensor;
}

/** ε̂(x, t) of the model with conditioning and guidance (and tiling, when given). */
export function modelEps(model: LatentDiffusion, cond: Conditioning, uncond: Conditioning | undefined, scale: number, tiling?: SplitInputParams | null): EpsFn {
  return guidedEps((x, t, c) => model.applyModel(x, t, c, { tiling }), cond, uncond, scale);
}

export function sampleLatents(model: LatentDiffusion, o: LatentSampleOptions): LatentSampleResult {
  const spec = samplerSpec(o.sampler);
  const noise = o.noise ?? seededNoise(o.seed ?? 0);
  const eps = modelEps(model, o.cond, o.uncond, o.scale ?? 1, o.tiling);
  const sampler = spec.create(
    { buffers: model.schedule(), parameterization: model.config.parameterization },
    { steps: o.steps, eta: o.eta, discretize: o.discretize, schedule: o.schedule, s_noise: o.s_noise },
  );
  const blend = o.latentMask ? latentBlend(model, o.latentMask.mask, o.latentMask.x0, noise) : undefined;
  let xT: T.Tensor;
  let start: number | undefined;
  if (o.init) {
    ({ x: xT, start } = sampler.noiseTo(o.init.x0, o.init.strength, noise(o.init.x0.shape)));
  } else if (o.xT) {
    xT = o.xT;
  } else {
    if (!o.shape) throw new Error('sampleLatents: give shape or xT');
    xT = noise(o.shape);
  }
  const r = T.withWeightCache(o.weightCacheBytes ?? T.weightCacheBudget(), () => sampler.sample(eps, xT, { noise, onStep: o.onStep, blend, start }));
  return { ...r, start: xT };
}

/** x ← q_sample(x0, t)·mask + (1 − mask)·x (mask = 1 where x0 is kept). */
function latentBlend(model: LatentDiffusion, mask: T.Tensor, x0: T.Tensor, noise: NoiseFn) {
  return (x: T.Tensor, t: number) => {
    const known = model.qSample(x0, t, noise(x0.shape));
    return T.add(T.mul(known, mask), T.mul(x, T.sub(1, mask)));
  };
}
