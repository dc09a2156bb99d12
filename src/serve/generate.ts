// Runs one job on a loaded model (inside a generation thread): conditioning from the class / prompt
// (with a negative prompt as the unconditional context of guidance), the tasks' sampling loop, x̂₀
// previews decoded by the first stage every few steps, and PNGs carrying the generation parameters.
//
// Modes: generate (from noise); img2img (SD scripts/img2img.py: noise the encoded init image to the
// strength's level and denoise); inpaint: with an inpainting model (concat conditioning,
// scripts/inpaint.py) or Stable Diffusion's (hybrid: the prompt too) through their tasks; with any
// other model, img2img whose latent is pinned to the noised init latent outside the mask at every step
// (the reference's mask/x0 sampling in ldm/models/diffusion/ddim.py), the known pixels pasted back.

import * as T from '../engine/index.js';
import type { Conditioning } from '../diffusion/guidance.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { samplerSpec, type StepInfo } from '../diffusion/samplers/index.js';
import { decodeImage, encodePng, imageToTensor, tensorToImages, type Image } from '../io/image.js';
import * as tasks from '../tasks/index.js';
import type { ModelInfo } from './model-info.js';
import type { JobSpec } from './request.js';

export interface GenerateHooks {
  /** After every step; `preview` (a PNG of sample 0's x̂₀) every few steps. */
  onProgress(step: number, total: number, preview?: Buffer): void;
  /** Polled after every step: true stops sampling. */
  cancelled(): boolean;
  vocabFile?: string;
}

export interface GenerateResult {
  cancelled: boolean;
  /** PNG files with a `parameters` text chunk. */
  images: Buffer[];
  params: Record<string, tasks.ParamValue>;
}

/** Roughly eight previews per job, never more than one per step. */
export function previewEvery(total: number): number {
  return Math.max(1, Math.ceil(total / 8));
}

function conditioning(model: LatentDiffusion, info: ModelInfo, s: JobSpec, vocab?: string): { cond: Conditioning; uncond?: Conditioning; params: Record<string, tasks.ParamValue> } {
  return T.noGrad(() => {
    if (info.task === 'class') {
      const r = tasks.classConditioning(model, new Array<number>(s.n).fill(s.class!), s.scale);
      const params: Record<string, tasks.ParamValue> = { class: String(s.class), class_name: info.classes!.names[s.class!] };
      if (r.uncondClass !== undefined) params.uncond_class = String(r.uncondClass);
      return { cond: r.cond, uncond: r.uncond, params };
    }
    if (info.task === 'text') {
      const prompts = new Array<string>(s.n).fill(s.prompt!);
      const r = tasks.textConditioning(model, prompts, s.scale, vocab);
      const params: Record<string, tasks.ParamValue> = { prompt: s.prompt! };
      if (s.negativePrompt !== undefined && s.scale !== 1) {
        params.negative_prompt = s.negativePrompt;
        return { cond: r.cond, uncond: model.getLearnedConditioning(prompts.map(() => s.negativePrompt!)), params };
      }
      return { cond: r.cond, uncond: r.uncond, params };
    }
    return { cond: null, params: {} };
  });
}

/** Sample 0's x̂₀ decoded by the first stage, as a PNG. */
function previewPng(model: LatentDiffusion, predX0: T.Tensor): Buffer {
  let png: Buffer | undefined;
  T.tidy(() => {
    png = encodePng(tensorToImages(model.decodeFirstStage(T.slice(predX0, 0, 0, 1)))[0]);
  });
  return png!;
}

export function generate(model: LatentDiffusion, info: ModelInfo, s: JobSpec, hooks: GenerateHooks): GenerateResult {
  const every = previewEvery(s.steps);
  let stopped = false;
  const onStep = ({ step, total, predX0 }: StepInfo) => {
    const showPreview = s.preview && ((step + 1) % every === 0 || step + 1 === total);
    hooks.onProgress(step, total, showPreview ? previewPng(model, predX0) : undefined);
    if (hooks.cancelled()) {
      stopped = true;
      return false;
    }
    return true;
  };
  const settings: tasks.SamplingSettings = { sampler: s.sampler, steps: samplerSpec(s.sampler).options.includes('steps') ? s.steps : undefined, eta: s.eta, scale: s.scale, seed: s.seed, onStep };
  const init = s.init ? decodeImage(s.init, 'init_image') : undefined;
  const mask = s.mask ? decodeImage(s.mask, 'mask') : undefined;

  let r: tasks.TaskResult;
  if (info.task === 'inpainting') {
    r = tasks.sampleInpainting(model, { ...settings, image: init!, mask: mask!, n: s.n });
  } else if (info.task === 'text-inpainting') {
    const prompts = new Array<string>(s.n).fill(s.prompt!);
    const negativePrompts = s.negativePrompt !== undefined && s.scale !== 1 ? [s.negativePrompt] : undefined;
    r = tasks.sampleTextInpainting(model, { ...settings, image: init!, mask: mask!, prompts, vocabFile: hooks.vocabFile, negativePrompts });
  } else if (info.task === 'unconditional' && s.mode === 'generate') {
    r = tasks.sampleUnconditional(model, { ...settings, n: s.n, H: s.height, W: s.width });
  } else {
    const { cond, uncond, params } = conditioning(model, info, s, hooks.vocabFile);
    const shape = tasks.latentShape(model, s.n, s.height, s.width);
    const size = `${s.width}x${s.height}`;
    if (s.mode === 'generate') {
      r = tasks.runSampling(model, settings, cond, uncond, shape, {}, { task: info.task, size, ...params });
    } else {
      const x0 = tasks.encodePerImage(model, imageToTensor(init!, tasks.pictureMode(model), 'signed'), s.n, s.seed);
      const extra = { init: { x0, strength: s.strength! }, ...(mask ? { latentMask: { mask: tasks.keptLatentMask(mask, shape), x0 } } : {}) };
      r = tasks.runSampling(model, settings, cond, uncond, shape, extra, { task: s.mode, strength: String(s.strength), size, ...params });
      if (mask) r = { ...r, images: tasks.pasteKnown(r.images, init!, mask) };
    }
  }
  const params: Record<string, tasks.ParamValue> = { ...r.params, model: info.name, mode: s.mode };
  const images = stopped ? [] : r.images.map((im, i) => encodePng(im, { parameters: JSON.stringify({ ...params, index: i }), Software: 'ldm-ts' }));
  return { cancelled: stopped || r.cancelled, images, params };
}
