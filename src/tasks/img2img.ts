// Image-to-image (SD scripts/img2img.py, for any LatentDiffusion with no spatial conditioning): encode
// the init image (KL: posterior sample; VQ: latent), noise it to the level of the first step run, and
// denoise from there. The reference noises to DDIM index t_enc but starts denoising at t_enc − 1 (and
// fails at strength 1); here both use the same level: t_enc = floor(strength · steps) steps are run.

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageToTensor, type Image } from '../io/image.js';
import { classConditioning } from './class-conditional.js';
import { firstSeed, latentShape, modelTask, pictureMode, runSampling, type ParamValue, type SamplingSettings, type TaskResult } from './common.js';
import { TaskInputError } from './errors.js';
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
}

/** The initial picture and strength: a model img2img works with, 0 < strength ≤ 1, a size it can sample; returns the latent shape for n images. */
export function checkImg2Img(model: LatentDiffusion, init: Image, strength: number, n: number): number[] {
  const task = modelTask(model);
  if (task !== 'unconditional' && task !== 'class' && task !== 'text') {
    throw new TaskInputError('initImage', `img2img works with unconditional, class-conditional and text-to-image models; this is a ${task} model`);
  }
  if (!(strength > 0 && strength <= 1)) throw new TaskInputError('strength', `strength must be in (0, 1], got ${strength}`);
  return latentShape(model, n, init.height, init.width, { input: 'initImage', what: 'the initial image' });
}

export function sampleImg2Img(model: LatentDiffusion, o: Img2ImgOptions): TaskResult {
  const task = modelTask(model);
  const n = o.prompts?.length ?? o.classes?.length ?? o.n ?? 1;
  const shape = checkImg2Img(model, o.init, o.strength, n);
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
  const x0 = T.noGrad(() => {
    const enc = model.encodeFirstStage(imageToTensor(o.init, pictureMode(model), 'signed'));
    return T.concat(Array.from({ length: n }, (_, i) => model.getFirstStageEncoding(enc, new T.Generator(seed + i + 0x5eed))), 0);
  });
  return runSampling(model, o, cond, uncond, shape, { init: { x0, strength: o.strength } }, params);
}
