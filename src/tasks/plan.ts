// Checking a sampling request against a model before any work: `planSample` reads only the model's
// structure and schedule (a shape-only build from the config is enough, so a front end can refuse bad
// input before the weights load) and either throws a TaskInputError naming the input, or returns every
// setting the run will use — sampler, steps, the images and their seeds, the batches, the memory estimate.

import type * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { SAMPLERS, SIGMA_SCHEDULES, samplerSpec, type SamplerName, type SigmaSchedule } from '../diffusion/samplers/index.js';
import type { StepCallback } from '../diffusion/samplers/index.js';
import type { Image } from '../io/image.js';
import { checkClasses, numClasses } from './class-conditional.js';
import { checkOpaque, CONDITIONING_INPUTS, describeTask, firstSeed, imageSize, INPAINTING_TASKS, latentShape, modelTask, takersOf, takesPrompt, taskTakes, type TaskName } from './common.js';
import { DEFAULTS, defaultScale } from './defaults.js';
import { TaskInputError, type TaskInput } from './errors.js';
import { checkImg2Img } from './img2img.js';
import { checkInpaintInputs } from './inpainting.js';
import { checkMemory, type MemoryEstimate } from './memory.js';
import { checkLabelMap } from './semantic.js';
import { checkLowRes, isTiled } from './super-resolution.js';
import { checkTextInpaintInputs } from './text-inpainting.js';
import { checkPrompts } from './text-to-image.js';

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
  /** img2img: the fraction of the schedule re-run, 0 < strength ≤ 1 (default 0.75; 1 with a mask). */
  strength?: number;
  /** Inpainting models: the picture to fill (or initImage). */
  image?: Image;
  /** The region to fill (white): for inpainting models, and for img2img (any other model inpaints that way). */
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
  /**
   * Bytes of packed weights kept from step to step: the same images, faster steps, more memory (see
   * T.withWeightCache). Default T.weightCacheBudget() (LDM_WEIGHT_CACHE_MB; 0 = none).
   */
  weightCacheBytes?: number;
  /** Called after every step (return false to stop); step/total count over all batches. */
  onStep?: StepCallback;
}

/** The sampling settings a model may come with (an embedded model's model.json). */
export interface TunedDefaults {
  steps?: number;
  scale?: number;
  sampler?: string;
  eta?: number;
}

export interface SamplePlan {
  task: TaskName;
  sampler: SamplerName;
  /** undefined: ddpm (every timestep). */
  steps?: number;
  eta?: number;
  scale: number;
  seed: number;
  /** Images per class / prompt / input. */
  n: number;
  /** All images, their class / prompt (one entry per image, or empty), in batches of batchSize. */
  total: number;
  perClass: number[];
  perPrompt: string[];
  batchSize: number;
  batches: number;
  /** img2img's initial picture; inpainting's picture. */
  init?: Image;
  inpaintImage?: Image;
  /** Output size in pixels. */
  H: number;
  W: number;
  memory: MemoryEstimate;
}


const WHAT: Partial<Record<TaskInput, string>> = {
  classLabel: 'a class label', uncondClass: 'an unconditional class', prompt: 'a prompt', vocab: 'a vocabulary',
  image: 'an image', mask: 'a mask', lowRes: 'a low-resolution image', tile: 'tiling', segmentation: 'a label map',
};

const COUNTS: Partial<Record<TaskInput, string>> = { n: 'the number of images per class, prompt or input', steps: 'the number of steps', batchSize: 'the batch size (0 = all at once)' };

function posInt(input: TaskInput, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new TaskInputError(input, `${COUNTS[input] ?? input} must be an integer ≥ ${min}, got ${v}`);
}

/** The step count checked by the sampler itself, on the model's own schedule. */
function checkSteps(model: LatentDiffusion, sampler: SamplerName, steps: number, eta: number | undefined, schedule: SigmaSchedule | undefined): void {
  try {
    samplerSpec(sampler).create({ buffers: model.schedule(), parameterization: model.config.parameterization }, { steps, eta, schedule });
  } catch (e) {
    if (e instanceof RangeError) throw new TaskInputError('steps', e.message);
    throw new TaskInputError('sampler', (e as Error).message);
  }
}

/** Check a request against the model (its structure and schedule only) and settle every setting of the run. */
export function planSample(model: LatentDiffusion, o: SampleOptions, tuned: TunedDefaults = {}): SamplePlan {
  const task = modelTask(model);
  const given = (k: TaskInput) => (o as Record<string, unknown>)[k] !== undefined;
  const inpainting = INPAINTING_TASKS.includes(task);
  const text = takesPrompt(task);
  const inpaintImage = inpainting ? o.image ?? o.initImage : undefined;
  for (const input of CONDITIONING_INPUTS) {
    if (given(input) && !taskTakes(task, input)) {
      throw new TaskInputError(input, `${WHAT[input]} is for ${takersOf(input)}, but this is ${describeTask(task)}`);
    }
  }
  const init = inpainting ? undefined : o.initImage;
  if (o.mask && !inpainting && !init) throw new TaskInputError('mask', `${describeTask(task)} inpaints through img2img: give the initial image the mask applies to`);
  if (o.strength !== undefined && !init) throw new TaskInputError('strength', 'strength applies to img2img: give an initial image');
  if (init && (o.H !== undefined || o.W !== undefined)) throw new TaskInputError(o.H !== undefined ? 'H' : 'W', `the image size does not apply to img2img (the initial image's ${init.width}×${init.height} is used)`);
  posInt('n', o.n);
  posInt('steps', o.steps);
  posInt('batchSize', o.batchSize, 0);
  const sampler = o.sampler ?? (tuned.sampler as SamplerName | undefined) ?? DEFAULTS.sampler;
  if (!SAMPLERS.includes(sampler)) throw new TaskInputError('sampler', `the sampler must be one of ${SAMPLERS.join(', ')}, got "${sampler}"`);
  const spec = samplerSpec(sampler);
  if (sampler === 'ddpm' && o.steps !== undefined) throw new TaskInputError('steps', 'the ddpm sampler runs every timestep (ancestral sampling); for fewer steps use ddim with eta 1');
  if (o.schedule !== undefined) {
    if (!SIGMA_SCHEDULES.includes(o.schedule)) throw new TaskInputError('schedule', `the schedule must be one of ${SIGMA_SCHEDULES.join(', ')}, got "${o.schedule}"`);
    if (!spec.options.includes('schedule')) throw new TaskInputError('schedule', `the ${sampler} sampler takes no noise schedule (the k-diffusion samplers do: ${SAMPLERS.filter((x) => samplerSpec(x).options.includes('schedule')).join(', ')})`);
  }
  if (o.eta !== undefined) {
    const takesEta = SAMPLERS.filter((x) => samplerSpec(x).options.includes('eta'));
    if (!spec.options.includes('eta')) throw new TaskInputError('eta', `eta does not apply to the ${sampler} sampler (it is read by ${takesEta.join(', ')})`);
    if (!Number.isFinite(o.eta) || o.eta < 0) throw new TaskInputError('eta', `eta must be a number ≥ 0, got ${o.eta}`);
    if (sampler === 'ddim' && o.eta > 1) throw new TaskInputError('eta', `DDIM eta must be in [0, 1] (1 adds the noise of ancestral DDPM sampling; more than the schedule holds gives NaN), got ${o.eta}`);
  }
  if (o.scale !== undefined && !Number.isFinite(o.scale)) throw new TaskInputError('scale', `the guidance scale must be a finite number, got ${o.scale}`);
  const guidable = task === 'class' || text;
  if (o.scale !== undefined && o.scale !== 1 && !guidable) {
    throw new TaskInputError('scale', `classifier-free guidance needs a conditioning to leave out; ${describeTask(task)} has none (scale 1 only)`);
  }
  const seed = firstSeed(o.seed);
  const n = o.n ?? (o.xT && !o.prompt && o.classLabel === undefined ? o.xT.shape[0] : DEFAULTS.n);

  // One entry per image: its class / prompt (each given n times).
  const classes = o.classLabel === undefined ? [] : Array.isArray(o.classLabel) ? o.classLabel : [o.classLabel];
  const prompts = o.prompt === undefined ? [] : Array.isArray(o.prompt) ? o.prompt : [o.prompt];
  if (task === 'class' && !classes.length) throw new TaskInputError('classLabel', 'this is a class-conditional model: give a class label');
  if (text && !prompts.length) throw new TaskInputError('prompt', `this is ${describeTask(task)}: give a prompt`);
  if (inpainting && (!inpaintImage || !o.mask)) throw new TaskInputError(inpaintImage ? 'mask' : 'image', `this is ${describeTask(task)}: give the image and a mask (white = the region to fill)`);
  if (task === 'superres' && !o.lowRes) throw new TaskInputError('lowRes', 'this is a super-resolution model: give a low-resolution image');
  if (task === 'semantic' && !o.segmentation) throw new TaskInputError('segmentation', 'this is a semantic-synthesis model: give a label map');
  const rep = <X>(xs: X[]) => xs.flatMap((x) => new Array<X>(n).fill(x));
  const perClass = rep(classes), perPrompt = rep(prompts);
  const total = perClass.length || perPrompt.length || n;

  let scale = o.scale ?? tuned.scale;
  if (scale === undefined) scale = defaultScale(task, task === 'class' && (o.uncondClass !== undefined || numClasses(model) !== 1000));
  if (task === 'class') checkClasses(model, classes, scale, o.uncondClass);
  if (text) checkPrompts(model, prompts, scale, o.vocab, negativeList(o));

  // The pictures, and the output size they make.
  const f = model.firstStageFactor;
  let H: number, W: number, window: number | undefined;
  if (init) {
    checkOpaque(init, 'initImage', 'the initial image');
    if (o.mask) checkOpaque(o.mask, 'mask', 'the mask');
    checkImg2Img(model, init, img2imgStrength(o), 1, o.mask);
    [H, W] = [init.height, init.width];
  } else if (inpainting) {
    checkOpaque(inpaintImage!, 'image', 'the image');
    checkOpaque(o.mask!, 'mask', 'the mask');
    (task === 'inpainting' ? checkInpaintInputs : checkTextInpaintInputs)(model, inpaintImage!, o.mask!, 1);
    [H, W] = [inpaintImage!.height, inpaintImage!.width];
  } else if (task === 'superres') {
    checkOpaque(o.lowRes!, 'lowRes', 'the low-resolution image');
    checkLowRes(model, o.lowRes!, 1);
    [H, W] = [o.lowRes!.height * f, o.lowRes!.width * f];
    if (isTiled(o.lowRes!, o.tile)) window = 128;
  } else if (task === 'semantic') {
    const map = checkLabelMap(model, o.segmentation!);
    latentShape(model, 1, map.H, map.W, { input: 'segmentation', what: 'the label map' });
    [H, W] = [map.H, map.W];
  } else {
    [H, W] = imageSize(model, o);
    latentShape(model, 1, H, W);
  }
  if (o.xT) {
    const want = [total, model.config.channels, H / f, W / f];
    if (o.xT.ndim !== 4 || o.xT.shape.some((d, i) => d !== want[i])) throw new TaskInputError('xT', `x_T has shape [${o.xT.shape}], this request needs [${want}] (${total} image${total === 1 ? '' : 's'} of ${W}×${H})`);
  }

  const eta = o.eta ?? tuned.eta;
  const steps = o.steps ?? (sampler === 'ddpm' ? undefined : tuned.steps ?? DEFAULTS.steps);
  checkSteps(model, sampler, steps ?? model.numTimesteps, eta, o.schedule);
  const batchSize = Math.min(o.batchSize || total, total);
  const guided = scale !== 1 && guidable;
  const memory = checkMemory(model, { batch: batchSize, guided, total, H, W, encodes: !!init || inpainting, window, packs: o.weightCacheBytes }, { n: 'n', batch: 'batchSize' });
  return {
    task, sampler, steps, eta, scale, seed, n, total, perClass, perPrompt, batchSize, batches: Math.ceil(total / batchSize),
    init, inpaintImage, H, W, memory,
  };
}

/** img2img's strength: as given, else 1 with a mask (the masked region from pure noise), else the default. */
export function img2imgStrength(o: SampleOptions): number {
  return o.strength ?? (o.mask ? 1 : DEFAULTS.strength);
}

export function negativeList(o: SampleOptions): string[] | undefined {
  return o.negativePrompt === undefined ? undefined : Array.isArray(o.negativePrompt) ? o.negativePrompt : [o.negativePrompt];
}
