// Inpainting (scripts/inpaint.py with models/ldm/inpainting_big): the mask (1 = fill) and the masked
// image are mapped to [−1, 1], the masked image is encoded by the first stage (VQ pre-quantization
// latent), the mask is resized (nearest) to the latent size and both are concatenated to the noisy
// latent (3 + 3 + 1 = 7 UNet channels). After decoding, the result is pasted into the original with
// the pixel mask; here the known pixels are copied byte for byte (the reference's float round trip
// can lower them by one level).

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { imageToTensor, type Image } from '../io/image.js';
import { latentShape, repeatBatch, requireTask, resizeNearest, runSampling, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError } from './errors.js';
import { checkMaskSize, fillMask, pasteKnown } from './mask.js';

export interface InpaintOptions extends SamplingSettings {
  image: Image;
  /** White (≥ 0.5) = the region to fill. */
  mask: Image;
  n?: number;
}

/** The image and its mask: the same size, a size the model can sample; returns the latent shape for n images. */
export function checkInpaintInputs(model: LatentDiffusion, img: Image, mk: Image, n: number): number[] {
  checkMaskSize(img, mk);
  return latentShape(model, n, img.height, img.width, { input: 'image', what: 'the image' });
}

export function sampleInpainting(model: LatentDiffusion, o: InpaintOptions): TaskResult {
  requireTask(model, 'inpainting');
  const { image: img, mask: mk } = o;
  const n = o.n ?? o.xT?.shape[0] ?? 1;
  const shape = checkInpaintInputs(model, img, mk, n);
  const image = imageToTensor(img, 'rgb', 'unit');
  const m01 = fillMask(mk);
  const cond = T.noGrad(() => {
    const masked = T.sub(T.mul(T.mul(T.sub(1, m01), image), 2), 1);
    const maskSigned = T.sub(T.mul(m01, 2), 1);
    const c = model.getLearnedConditioning(masked);
    const cc = resizeNearest(maskSigned, [c.shape[2], c.shape[3]]);
    return repeatBatch(T.concat([c, cc], 1), n);
  });
  if (model.model.diffusion_model.config.in_channels !== shape[1] + cond.shape[1]) {
    throw new TaskError(`the UNet takes ${model.model.diffusion_model.config.in_channels} channels, but latent (${shape[1]}) + conditioning (${cond.shape[1]}) give ${shape[1] + cond.shape[1]}`);
  }
  const r = runSampling(model, o, cond, undefined, shape, {}, { task: 'inpainting', width: img.width, height: img.height });
  // Paste: masked pixels from the sample, the rest exactly as given.
  return { ...r, images: pasteKnown(r.images, img, mk) };
}
