// Super-resolution (models/ldm/bsr_sr, notebook_helpers.py): the low-resolution image in [−1, 1] is
// concatenated to the noisy latent of the same size, so the output is f× larger (×4 for bsr_sr).
// DDIM with eta = 1 by default, as the notebook. Large inputs are tiled with the reference's
// split_input_params (128×128 latent windows at stride 64, border-weighted blending), also for decoding.

import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { defaultSplitInputParams } from '../diffusion/tiling.js';
import * as T from '../engine/index.js';
import { imageToTensor, type Image } from '../io/image.js';
import { latentShape, repeatBatch, requireTask, runSampling, type SamplingSettings, type TaskResult } from './common.js';

export interface SuperResOptions extends SamplingSettings {
  lowRes: Image;
  n?: number;
  /** Tile the UNet and the decoder: 'auto' (when the input exceeds a 128-pixel window), or always / never. */
  tiled?: boolean | 'auto';
  /** Window and stride of the tiles (latent pixels). */
  window?: number;
  stride?: number;
}

/** The low-resolution picture: a size whose f× output the model can sample; returns the latent shape for n images. */
export function checkLowRes(model: LatentDiffusion, lr: Image, n: number): number[] {
  const f = model.firstStageFactor;
  return latentShape(model, n, lr.height * f, lr.width * f, { input: 'lowRes', what: 'the low-resolution image', scale: f });
}

/** Whether a low-resolution input is sampled in windows ('auto': when it exceeds one window of `ks` pixels). */
export function isTiled(lr: Image, tiled: boolean | 'auto' | undefined, ks = 128): boolean {
  return tiled === undefined || tiled === 'auto' ? lr.height > ks || lr.width > ks : tiled;
}

export function sampleSuperResolution(model: LatentDiffusion, o: SuperResOptions): TaskResult {
  requireTask(model, 'superres');
  const lr = o.lowRes;
  const f = model.firstStageFactor;
  const n = o.n ?? o.xT?.shape[0] ?? 1;
  const shape = checkLowRes(model, lr, n);
  const ks = o.window ?? 128, stride = o.stride ?? 64;
  const tiled = isTiled(lr, o.tiled, ks);
  const cond = T.noGrad(() => repeatBatch(model.getLearnedConditioning(imageToTensor(lr, 'rgb', 'signed')), n));
  const tiling = tiled ? { ...defaultSplitInputParams(f), ks: [ks, ks] as [number, number], stride: [stride, stride] as [number, number] } : null;
  return runSampling(model, { ...o, eta: o.eta ?? 1, tiling }, cond, undefined, shape, {}, {
    task: 'superres', input_width: lr.width, input_height: lr.height, width: lr.width * f, height: lr.height * f, tiled,
  });
}
