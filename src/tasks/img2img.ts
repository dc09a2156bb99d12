// Image-to-image (SD scripts/img2img.py, for any LatentDiffusion with no spatial conditioning): encode
// the init image (KL: posterior sample; VQ: latent), noise it to the level of the first step run, and
// denoise from there. The reference noises to DDIM index t_enc but starts denoising at t_enc − 1 (and
// fails at strength 1); here both use the same level: t_enc = floor(strength · steps) steps are run.
// With a mask it is inpainting for any such model: the latent cells the mask leaves untouched are reset
// to the noised init latent after every step (the reference's DDIM mask/x0), and after decoding the
// known pixels are pasted back exactly.

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageToTensor, type Image } from '../io/image.js';
import { classConditioning } from './class-conditional.js';
import { encodePerImage, firstSeed, IMG2IMG_TASKS, latentShape, modelTask, pictureMode, runSampling, type ParamValue, type SamplingSettings, type TaskResult } from './common.js';
import { TaskInputError } from './errors.js';
import { checkMaskSize, keptLatentMask, pasteKnown } from './mask.js';
import { textConditioning } from './text-to-image.js';

export interface Img2ImgOptions extends SamplingSettings {
  init: Image;
  /** 0 < strength ≤ 1: the fraction of the schedule re-run (1 = start from pure noise at the top). */
  strength: number;
  n?: number;
  prompts?: string[];
  classes?: number[];
  uncondClass?: number;
  vocabFile?: string;
  negativePrompts?: string[];
  /** Inpainting with this model: white = the region to fill; the rest of the latent is kept (default strength 1). */
  mask?: Image;
}

/** The initial picture and strength: a model img2img works with, 0 < strength ≤ 1, a size it can sample; returns the latent shape for n images. */
export function checkImg2Img(model: LatentDiffusion, init: Image, strength: number, n: number, mask?: Image): number[] {
  const task = modelTask(model);
  if (!IMG2IMG_TASKS.includes(task)) {
    throw new TaskInputError('initImage', `img2img works with unconditional, class-conditional and text-to-image models; this is a ${task} model`);
  }
  if (!(strength > 0 && strength <= 1)) throw new TaskInputError('strength', `strength must be in (0, 1], got ${strength}`);
  if (mask) checkMaskSize(init, mask, 'initImage');
  return latentShape(model, n, init.height, init.width, { input: 'initImage', what: 'the initial image' });
}

export function sampleImg2Img(model: LatentDiffusion, o: Img2ImgOptions): TaskResult {
  const task = modelTask(model);
  const n = o.prompts?.length ?? o.classes?.length ?? o.n ?? 1;
  const shape = checkImg2Img(model, o.init, o.strength, n, o.mask);
  const scale = o.scale ?? 1;
  let cond: Conditioning = null, uncond: Conditioning | undefined;
  const params: Record<string, ParamValue> = { task: 'img2img', strength: o.strength, width: o.init.width, height: o.init.height };
  T.noGrad(() => {
    if (task === 'text') {
      if (!o.prompts?.length) throw new TaskInputError('prompt', 'this is a text-to-image model: img2img needs a prompt');
      ({ cond, uncond } = textConditioning(model, o.prompts, scale, o.vocabFile, o.negativePrompts));
      params.prompt = o.prompts[0];
    } else if (task === 'class') {
      if (!o.classes?.length) throw new TaskInputError('classLabel', 'this is a class-conditional model: img2img needs a class label');
      ({ cond, uncond } = classConditioning(model, o.classes, scale, o.uncondClass));
      params.classes = o.classes;
    }
  });
  // One posterior draw per image, from a generator of its own seed (image i alone regenerates it).
  const seed = firstSeed(o.seed);
  const x0 = encodePerImage(model, imageToTensor(o.init, pictureMode(model), 'signed'), n, seed);
  if (!o.mask) return runSampling(model, o, cond, uncond, shape, { init: { x0, strength: o.strength } }, params);
  // Latent-blend inpainting: outside the mask the latent is pinned to the noised x0 at every step.
  params.task = 'inpaint';
  const r = runSampling(model, o, cond, uncond, shape, { init: { x0, strength: o.strength }, latentMask: { mask: keptLatentMask(o.mask, shape), x0 } }, params);
  return { ...r, images: pasteKnown(r.images, o.init, o.mask) };
}
