// Text-guided inpainting with Stable Diffusion's inpainting model (LatentInpaintDiffusion, conditioning_key
// hybrid; scripts/inpaint_st.py of runwayml/stable-diffusion). The mask is binarised at 0.5 (1 = fill);
// the masked image is the picture in [−1, 1] times (mask < 0.5), so the region to fill reads 0; the UNet
// input is the noisy latent followed by the concat_keys in order — "mask" resized (nearest) to the latent,
// "masked_image" encoded by the first stage — and the prompt is the cross-attention context. Guidance
// keeps the concat input and swaps the prompt for "" (or a negative prompt). The known pixels are pasted
// back after decoding, as the inpainting task does.

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { CondDict } from '../diffusion/guidance.js';
import { imageToTensor, type Image } from '../io/image.js';
import { inpaintConcat } from '../loader/inpaint-diffusion.js';
import { encodePerImage, firstSeed, latentShape, repeatBatch, requireTask, resizeNearest, runSampling, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError, TaskInputError } from './errors.js';
import { checkMaskSize, fillMask, pasteKnown } from './mask.js';
import { textConditioning, textParams } from './text-to-image.js';

export interface TextInpaintOptions extends SamplingSettings {
  /** The picture to fill and its mask (white = fill). */
  image: Image;
  mask: Image;
  /** One prompt per image. */
  prompts: string[];
  vocabFile?: string;
  negativePrompts?: string[];
}

/** The concat recipe, checked against the UNet's input channels (structure only); the latent shape for n images. */
export function checkTextInpaintInputs(model: LatentDiffusion, img: Image, mk: Image, n: number): number[] {
  checkMaskSize(img, mk);
  const shape = latentShape(model, n, img.height, img.width, { input: 'image', what: 'the image' });
  const { concatKeys, maskedImageKey } = inpaintConcat(model)!;
  const unknown = concatKeys.find((k) => k !== 'mask' && k !== maskedImageKey);
  if (unknown) throw new TaskError(`concat_keys names "${unknown}": text-guided inpainting provides "mask" and "${maskedImageKey}" only`);
  const want = shape[1] + concatKeys.reduce((s, k) => s + (k === 'mask' ? 1 : shape[1]), 0);
  const has = model.model.diffusion_model.config.in_channels;
  if (has !== want) throw new TaskError(`the UNet takes ${has} input channels, but the latent (${shape[1]}) and concat_keys [${concatKeys.join(', ')}] give ${want}`);
  return shape;
}

/** [n, 1 + C, h, w] (in concat_keys order): the mask at the latent size and the encoded masked picture. */
function concatInput(model: LatentDiffusion, img: Image, mk: Image, shape: number[], seed: number): T.Tensor {
  const [n, , h, w] = shape;
  const { concatKeys, maskedImageKey } = inpaintConcat(model)!;
  const fill = fillMask(mk);
  return T.noGrad(() => T.concat(concatKeys.map((k) => {
    if (k === maskedImageKey) return encodePerImage(model, T.mul(imageToTensor(img, 'rgb', 'signed'), T.sub(1, fill)), n, seed);
    return repeatBatch(resizeNearest(fill, [h, w]), n);
  }), 1));
}

export function sampleTextInpainting(model: LatentDiffusion, o: TextInpaintOptions): TaskResult {
  requireTask(model, 'text-inpainting');
  if (o.prompts.length === 0) throw new TaskInputError('prompt', 'this is a text-guided inpainting model: give a prompt');
  const shape = checkTextInpaintInputs(model, o.image, o.mask, o.prompts.length);
  const scale = o.scale ?? 1;
  const { cond, uncond } = T.noGrad(() => {
    const text = textConditioning(model, o.prompts, scale, o.vocabFile, o.negativePrompts);
    const cat = concatInput(model, o.image, o.mask, shape, firstSeed(o.seed));
    const dict = (c: T.Tensor): CondDict => ({ c_concat: [cat], c_crossattn: [c] });
    return { cond: dict(text.cond as T.Tensor), uncond: text.uncond ? dict(text.uncond as T.Tensor) : undefined };
  });
  const r = runSampling(model, o, cond, uncond, shape, {}, { task: 'text-inpainting', width: o.image.width, height: o.image.height, ...textParams(o.prompts, o.negativePrompts) });
  return { ...r, images: pasteKnown(r.images, o.image, o.mask) };
}
