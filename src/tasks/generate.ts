// `sample(model, options)`: one entry for every task. The task follows from the model's conditioning;
// the options given must fit it. Image i of the request uses seed + i (its own generator), so it comes
// out the same alone, in any batch, and in chunks of `batchSize` (which bounds the memory of a run).

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { SAMPLERS, SIGMA_SCHEDULES, samplerSpec, type SamplerName, type SigmaSchedule } from '../diffusion/samplers/index.js';
import type { StepCallback } from '../diffusion/samplers/index.js';
import type { Image } from '../io/image.js';
import type { LoadedModel } from '../loader/model.js';
import { sampleClassConditional, numClasses } from './class-conditional.js';
import { describeTask, firstSeed, modelTask, TASK_INPUTS, TASK_TITLES, type ParamValue, type SamplingSettings, type TaskName, type TaskResult } from './common.js';
import { DEFAULTS, defaultScale } from './defaults.js';
import { TaskInputError, type TaskInput } from './errors.js';
import { sampleImg2Img } from './img2img.js';
import { sampleInpainting } from './inpainting.js';
import { sampleSemantic } from './semantic.js';
import { sampleSuperResolution } from './super-resolution.js';
import { sampleTextToImage } from './text-to-image.js';
import { sampleUnconditional } from './unconditional.js';

export interface SampleOptions {
  /** Text-to-image: one prompt, or several (each gives n images). */
  prompt?: string | string[];
  /** Class-conditional: one label, or several (each gives n images). */
  classLabel?: number | number[];
  /** The "no class" label used under guidance (default: the model's last class, when it has one). */
  uncondClass?: number;
  /** bert-base-uncased vocab.txt (BERT text models), or the folder of CLIP's vocab.json + merges.txt (SD), for models without a tokenizer. */
  vocab?: string;
  /** Text models: the unconditional input of guidance instead of "" (one, or one per prompt). */
  negativePrompt?: string | string[];
  /** k-diffusion samplers: the noise levels (default: the model's own timesteps). */
  schedule?: SigmaSchedule;
  /** Images per prompt / class / input (default 1). */
  n?: number;
  /** Seed of the first image; image i uses seed + i (default 42). */
  seed?: number;
  steps?: number;
  /** Classifier-free guidance scale (default: 5 for text, 3 for class models with a "no class" label, else 1). */
  scale?: number;
  sampler?: SamplerName;
  /** DDIM eta (default 0; 1 for unconditional and super-resolution models). */
  eta?: number;
  /** Image size (default: the training size). */
  H?: number;
  W?: number;
  /** img2img start picture (unconditional, class and text models); inpainting models: the picture to fill. */
  initImage?: Image;
  /** img2img: the fraction of the schedule re-run, 0 < strength ≤ 1 (default 0.75). */
  strength?: number;
  /** Inpainting: the picture to fill (or initImage) and the mask (white = fill). */
  image?: Image;
  mask?: Image;
  /** Super-resolution input, and whether to tile it (default 'auto'). */
  lowRes?: Image;
  tile?: boolean | 'auto';
  /** Semantic synthesis: a label map (pixel value = class index, 255 = unlabelled). */
  segmentation?: Image | T.Tensor;
  /** A fixed starting latent [n, C, h, w] (e.g. the reference's x_T). */
  xT?: T.Tensor;
  /** At most this many images are denoised at once (default: all). */
  batchSize?: number;
  /** Called after every step (return false to stop); step/total count over all batches. */
  onStep?: StepCallback;
}

export interface SampleResult {
  task: TaskName;
  images: Image[];
  /** What each image needs to be made again alone: its seed, class or prompt. */
  perImage: { seed: number; classLabel?: number; prompt?: string }[];
  /** The settings of the run (numbers stay numbers). */
  params: Record<string, ParamValue>;
  /** Final latents and starting latents [N, C, h, w]. */
  samples: T.Tensor;
  start: T.Tensor;
  cancelled: boolean;
}

const INPUT_TASK = new Map<TaskInput, TaskName>(Object.entries(TASK_INPUTS).flatMap(([t, ins]) => ins.map((i) => [i, t as TaskName] as const)));

const WHAT: Partial<Record<TaskInput, string>> = {
  classLabel: 'a class label', uncondClass: 'an unconditional class', prompt: 'a prompt', vocab: 'a vocabulary',
  image: 'an image', mask: 'a mask', lowRes: 'a low-resolution image', tile: 'tiling', segmentation: 'a label map',
};

function isLoaded(m: LatentDiffusion | LoadedModel): m is LoadedModel {
  return 'model' in m && 'files' in m;
}

function posInt(input: TaskInput, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new TaskInputError(input, `${input} must be an integer ≥ ${min}, got ${v}`);
}

/** Sample images from a model (or a loaded model, whose model.json defaults then apply). */
export function sample(m: LatentDiffusion | LoadedModel, o: SampleOptions = {}): SampleResult {
  const model = isLoaded(m) ? m.model : m;
  const tuned = (isLoaded(m) ? m.info?.defaults : undefined) ?? {};
  const task = modelTask(model);
  const given = (k: TaskInput) => (o as Record<string, unknown>)[k] !== undefined;
  const inpaintImage = task === 'inpainting' ? o.image ?? o.initImage : undefined;
  for (const [input, owner] of INPUT_TASK) {
    if (given(input) && owner !== task) {
      throw new TaskInputError(input, `${WHAT[input]} is for ${TASK_TITLES[owner]} models, but this is ${describeTask(task)}`);
    }
  }
  const init = task === 'inpainting' ? undefined : o.initImage;
  if (o.strength !== undefined && !init) throw new TaskInputError('strength', 'strength applies to img2img: give an initial image');
  if (init && (o.H !== undefined || o.W !== undefined)) throw new TaskInputError(o.H !== undefined ? 'H' : 'W', `the image size does not apply to img2img (the initial image's ${init.width}×${init.height} is used)`);
  posInt('n', o.n);
  posInt('steps', o.steps);
  posInt('batchSize', o.batchSize, 0);
  const sampler = o.sampler ?? (tuned.sampler as SamplerName | undefined) ?? DEFAULTS.sampler;
  if (!SAMPLERS.includes(sampler)) throw new TaskInputError('sampler', `the sampler must be one of ${SAMPLERS.join(', ')}, got "${sampler}"`);
  if (sampler === 'ddpm' && o.steps !== undefined) throw new TaskInputError('steps', 'the ddpm sampler runs every timestep (ancestral sampling); for fewer steps use ddim with eta 1');
  if (o.schedule !== undefined) {
    if (!SIGMA_SCHEDULES.includes(o.schedule)) throw new TaskInputError('schedule', `the schedule must be one of ${SIGMA_SCHEDULES.join(', ')}, got "${o.schedule}"`);
    if (!samplerSpec(sampler).options.includes('schedule')) throw new TaskInputError('schedule', `the ${sampler} sampler takes no noise schedule (the k-diffusion samplers do: ${SAMPLERS.filter((x) => samplerSpec(x).options.includes('schedule')).join(', ')})`);
  }
  const seed = firstSeed(o.seed);
  const n = o.n ?? (o.xT && !o.prompt && o.classLabel === undefined ? o.xT.shape[0] : DEFAULTS.n);

  // One entry per image: its class / prompt (each given n times).
  const classes = o.classLabel === undefined ? [] : Array.isArray(o.classLabel) ? o.classLabel : [o.classLabel];
  const prompts = o.prompt === undefined ? [] : Array.isArray(o.prompt) ? o.prompt : [o.prompt];
  if (task === 'class' && !classes.length) throw new TaskInputError('classLabel', 'this is a class-conditional model: give a class label');
  if (task === 'text' && !prompts.length) throw new TaskInputError('prompt', 'this is a text-to-image model: give a prompt');
  if (task === 'inpainting' && (!inpaintImage || !o.mask)) throw new TaskInputError(inpaintImage ? 'mask' : 'image', 'this is an inpainting model: give the image and a mask (white = the region to fill)');
  if (task === 'superres' && !o.lowRes) throw new TaskInputError('lowRes', 'this is a super-resolution model: give a low-resolution image');
  if (task === 'semantic' && !o.segmentation) throw new TaskInputError('segmentation', 'this is a semantic-synthesis model: give a label map');
  const rep = <X>(xs: X[]) => xs.flatMap((x) => new Array<X>(n).fill(x));
  const perClass = rep(classes), perPrompt = rep(prompts);
  const total = perClass.length || perPrompt.length || n;
  if (o.xT && o.xT.shape[0] !== total) throw new TaskInputError('xT', `x_T holds ${o.xT.shape[0]} latents for ${total} images`);

  let scale = o.scale ?? tuned.scale;
  if (scale === undefined) scale = defaultScale(task, task === 'class' && (o.uncondClass !== undefined || numClasses(model) !== 1000));
  const eta = o.eta ?? tuned.eta;
  const steps = o.steps ?? (sampler === 'ddpm' ? undefined : tuned.steps ?? DEFAULTS.steps);
  const bs = o.batchSize || total;
  const chunks = Math.ceil(total / bs);

  const results: TaskResult[] = [];
  let cancelled = false;
  const samples: T.Tensor[] = [], starts: T.Tensor[] = [];
  for (let c = 0; c < chunks && !cancelled; c++) {
    const lo = c * bs, hi = Math.min(total, lo + bs), k = hi - lo;
    const onStep: StepCallback | undefined = o.onStep && ((info) => o.onStep!({ ...info, step: c * info.total + info.step, total: chunks * info.total }));
    const xT = o.xT && chunks > 1 ? T.contiguous(T.slice(o.xT, 0, lo, hi)) : o.xT;
    const s: SamplingSettings = { sampler, steps, eta, scale, seed: seed + lo, onStep, xT, schedule: o.schedule };
    // Everything but the latents (the decoded batch, the conditioning) is released before the next batch.
    let r: TaskResult | undefined;
    const kept = T.tidy(() => {
      r = run(model, task, o, s, k, init, inpaintImage, perClass.slice(lo, hi), perPrompt.slice(lo, hi));
      return { samples: r.samples, start: r.start };
    });
    results.push(r!);
    samples.push(kept.samples);
    starts.push(kept.start);
    cancelled = r!.cancelled;
  }
  const params = { ...results[0].params };
  delete params.seed;
  delete params.classes;
  delete params.prompt;
  if (chunks > 1) params.batch_size = bs;
  const perImage = results.flatMap((r) => r.seeds).map((sd, i) => ({
    seed: sd, ...(perClass.length ? { classLabel: perClass[i] } : {}), ...(perPrompt.length ? { prompt: perPrompt[i] } : {}),
  }));
  const cat = (ts: T.Tensor[]) => (ts.length === 1 ? ts[0] : T.concat(ts, 0));
  return { task, images: results.flatMap((r) => r.images), perImage, params, samples: cat(samples), start: cat(starts), cancelled };
}

function run(
  model: LatentDiffusion, task: TaskName, o: SampleOptions, s: SamplingSettings, n: number, init: Image | undefined,
  inpaintImage: Image | undefined, classes: number[], prompts: string[],
): TaskResult {
  if (init) {
    return sampleImg2Img(model, {
      ...s, init, strength: o.strength ?? DEFAULTS.strength, n, prompts: prompts.length ? prompts : undefined,
      classes: classes.length ? classes : undefined, uncondClass: o.uncondClass, vocabFile: o.vocab, negativePrompts: negativeList(o),
    });
  }
  switch (task) {
    case 'unconditional':
      return sampleUnconditional(model, { ...s, n, H: o.H, W: o.W });
    case 'class':
      return sampleClassConditional(model, { ...s, classes, uncondClass: o.uncondClass, H: o.H, W: o.W });
    case 'text':
      return sampleTextToImage(model, { ...s, prompts, vocabFile: o.vocab, negativePrompts: negativeList(o), H: o.H, W: o.W });
    case 'inpainting':
      return sampleInpainting(model, { ...s, image: inpaintImage!, mask: o.mask!, n });
    case 'superres':
      return sampleSuperResolution(model, { ...s, lowRes: o.lowRes!, n, tiled: o.tile ?? 'auto' });
    case 'semantic':
      return sampleSemantic(model, { ...s, segmentation: o.segmentation!, n });
  }
}

function negativeList(o: SampleOptions): string[] | undefined {
  return o.negativePrompt === undefined ? undefined : Array.isArray(o.negativePrompt) ? o.negativePrompt : [o.negativePrompt];
}
