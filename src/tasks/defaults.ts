// The sampling defaults, written once: the API's sample() and `ldm sample` (whose --help prints them)
// both read them. A model's own model.json may override steps / scale / sampler / eta for that model.

import type { SamplerName } from '../diffusion/samplers/index.js';
import type { TaskName } from './common.js';

export const DEFAULTS = {
  /** Image i of a batch uses seed + i. */
  seed: 42,
  /** Samples per prompt / class / input. */
  n: 1,
  sampler: 'ddim' as SamplerName,
  /** Sampler steps (DDPM runs every timestep). */
  steps: 50,
  /** img2img: the fraction of the schedule re-run. */
  strength: 0.75,
  /** Images denoised at once (0 = all of them). */
  batchSize: 0,
  /** Classifier-free guidance for text models (scripts/txt2img.py's default is 5). */
  textScale: 5,
  /** Classifier-free guidance for class models that have a "no class" label. */
  classScale: 3,
};

/** DDIM eta: 1 for unconditional and super-resolution (as scripts/sample_diffusion.py and the notebook), else 0. */
export function defaultEta(task: TaskName): number {
  return task === 'unconditional' || task === 'superres' ? 1 : 0;
}

/** Guidance scale: 5 for text (and text-guided inpainting), 3 for class models with an unconditional label, else 1 (no guidance). */
export function defaultScale(task: TaskName, hasUncondClass: boolean): number {
  if (task === 'text' || task === 'text-inpainting') return DEFAULTS.textScale;
  if (task === 'class') return hasUncondClass ? DEFAULTS.classScale : 1;
  return 1;
}
