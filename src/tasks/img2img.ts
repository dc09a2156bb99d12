// Image-to-image (SD scripts/img2img.py, for any LatentDiffusion with no spatial conditioning): encode
// the init image (KL: posterior sample; VQ: latent), noise it to the level of the first step run, and
// denoise from there. The reference noises to DDIM index t_enc but starts denoising at t_enc − 1 (and
// fails at strength 1); here both use the same level: t_enc = floor(strength · steps) steps are run.

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageToTensor, type Image } from '../io/image.js';
import { classConditioning } from './class-conditional.js';
import { latentShape, modelTask, repeatBatch, runSampling, TaskError, type SamplingSettings, type TaskResult } from './common.js';
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
}

export function sampleImg2Img(model: LatentDiffusion, o: Img2ImgOptions): TaskResult {
  const task = modelTask(model);
  const n = o.prompts?.length ?? o.classes?.length ?? o.n ?? 1;
  const shape = latentShape(model, n, o.init.height, o.init.width);
  const scale = o.scale ?? 1;
  let cond: Conditioning = null, uncond: Conditioning | undefined;
  const params: Record<string, string> = { task: 'img2img', strength: String(o.strength), size: `${o.init.width}x${o.init.height}` };
  T.noGrad(() => {
    if (task === 'text') {
      if (!o.prompts?.length) throw new TaskError('this text-to-image model needs --prompt for img2img');
      ({ cond, uncond } = textConditioning(model, o.prompts, scale, o.vocabFile));
      params.prompt = o.prompts[0];
    } else if (task === 'class') {
      if (!o.classes?.length) throw new TaskError('this class-conditional model needs --class for img2img');
      ({ cond, uncond } = classConditioning(model, o.classes, scale, o.uncondClass));
      params.classes = o.classes.join(',');
    } else if (task !== 'unconditional') {
      throw new TaskError(`img2img works with unconditional, class-conditional and text-to-image models; this is a ${task} model`);
    }
  });
  const gen = new T.Generator((o.seed ?? 0) + 0x5eed);
  const x0 = T.noGrad(() => {
    const enc = model.encodeFirstStage(imageToTensor(o.init, 'rgb', 'signed'));
    return repeatBatch(model.getFirstStageEncoding(enc, gen), n);
  });
  return runSampling(model, o, cond, uncond, shape, { init: { x0, strength: o.strength } }, params);
}
