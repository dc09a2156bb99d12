// Unconditional sampling (scripts/sample_diffusion.py): x_T ~ N(0, I) of shape [n, C, H/f, W/f], no
// conditioning; any size that is a multiple of f × the UNet downsampling (the training size by default).
// DDIM with eta = 1 unless given (sample_diffusion.py's -e default).

import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { imageSize, latentShape, requireTask, runSampling, type SamplingSettings, type TaskResult } from './common.js';

export interface UnconditionalOptions extends SamplingSettings {
  n?: number;
  H?: number;
  W?: number;
}

export function sampleUnconditional(model: LatentDiffusion, o: UnconditionalOptions = {}): TaskResult {
  requireTask(model, 'unconditional');
  const [H, W] = imageSize(model, o);
  const shape = latentShape(model, o.n ?? o.xT?.shape[0] ?? 1, H, W);
  return runSampling(model, { ...o, eta: o.eta ?? 1 }, null, undefined, shape, {}, { task: 'unconditional', width: W, height: H });
}
