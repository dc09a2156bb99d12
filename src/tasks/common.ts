// What every task shares: recognising what a model can do, latent sizes, sampling and decoding.

import * as T from '../engine/index.js';
import { Identity } from '../nn/index.js';
import { BERTEmbedder, ClassEmbedder, SpatialRescaler, TransformerEmbedder } from '../models/encoders/index.js';
import { FrozenCLIPEmbedder } from '../models/encoders/clip-text.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { inpaintConcat } from '../loader/inpaint-diffusion.js';
import { sampleLatents, type LatentSampleOptions } from '../diffusion/sample-latents.js';
import { samplerSpec, type SamplerName, type SigmaSchedule } from '../diffusion/samplers/index.js';
import type { SplitInputParams } from '../diffusion/tiling.js';
import type { Conditioning } from '../diffusion/guidance.js';
import type { StepCallback } from '../diffusion/samplers/index.js';
import { seededNoise, type NoiseFn } from '../diffusion/noise.js';
import { tensorToImages, type Image } from '../io/image.js';
import { TaskError, TaskInputError, type TaskInput } from './errors.js';
import { DEFAULTS } from './defaults.js';

export type TaskName = 'unconditional' | 'class' | 'text' | 'inpainting' | 'text-inpainting' | 'superres' | 'semantic';

export { TaskError, TaskInputError, type TaskInput } from './errors.js';

/** What each task is called in messages. */
export const TASK_TITLES: Record<TaskName, string> = {
  unconditional: 'unconditional',
  class: 'class-conditional',
  text: 'text-to-image',
  inpainting: 'inpainting',
  'text-inpainting': 'text-guided inpainting',
  superres: 'super-resolution',
  semantic: 'semantic-synthesis',
};

/** The conditioning inputs each task takes (img2img's initImage, strength and mask go with IMG2IMG_TASKS). */
export const TASK_INPUTS: Record<TaskName, TaskInput[]> = {
  unconditional: [],
  class: ['classLabel', 'uncondClass'],
  text: ['prompt', 'vocab', 'negativePrompt'],
  inpainting: ['image', 'mask'],
  'text-inpainting': ['prompt', 'vocab', 'negativePrompt', 'image', 'mask'],
  superres: ['lowRes', 'tile'],
  semantic: ['segmentation'],
};

/** Every conditioning input some task takes. */
export const CONDITIONING_INPUTS: readonly TaskInput[] = [...new Set(Object.values(TASK_INPUTS).flat())];

/** Tasks whose models are trained to fill a masked picture (given as `image`, or `initImage`). */
export const INPAINTING_TASKS: readonly TaskName[] = ['inpainting', 'text-inpainting'];

/** Whether a task's models read a prompt (text-to-image, text-guided inpainting). */
export function takesPrompt(task: TaskName): boolean {
  return TASK_INPUTS[task].includes('prompt');
}

/** The tasks whose models can also start from a picture (img2img), optionally with a mask (latent-blend inpainting). */
export const IMG2IMG_TASKS: readonly TaskName[] = ['unconditional', 'class', 'text'];

/** Whether a task's models take an input (img2img's inputs count for IMG2IMG_TASKS). */
export function taskTakes(task: TaskName, input: TaskInput): boolean {
  return TASK_INPUTS[task].includes(input) || (IMG2IMG_TASKS.includes(task) && (input === 'initImage' || input === 'strength' || input === 'mask'));
}

/** "inpainting or text-guided inpainting models": the models that take an input, for messages. */
export function takersOf(input: TaskInput): string {
  const t = (Object.keys(TASK_INPUTS) as TaskName[]).filter((k) => TASK_INPUTS[k].includes(input)).map((k) => TASK_TITLES[k]);
  const models = `${t.length > 1 ? `${t.slice(0, -1).join(', ')} or ${t.at(-1)}` : t[0]} models`;
  return input === 'mask' ? `${models}, or img2img with an initial image` : models;
}

/** "an unconditional model", "a class-conditional model", … */
export function describeTask(task: TaskName): string {
  const t = TASK_TITLES[task];
  return `${/^[aeiou]/.test(t) ? 'an' : 'a'} ${t} model`;
}

/** Which task a model was trained for, from its conditioning key and encoder. */
export function modelTask(model: LatentDiffusion): TaskName {
  const key = model.conditioningKey;
  const cs = model.cond_stage_model;
  if (key === null) return 'unconditional';
  if (cs instanceof ClassEmbedder && (key === 'crossattn' || key === 'adm')) return 'class';
  if (cs instanceof FrozenCLIPEmbedder && key === 'crossattn') return 'text';
  if ((cs instanceof BERTEmbedder || cs instanceof TransformerEmbedder) && key === 'crossattn') {
    if (model.config.cond_stage_key === 'caption') return 'text';
    throw new TaskError(`conditioning "${model.config.cond_stage_key}" through ${cs.constructor.name} (e.g. layout-to-image bounding-box tokens) is not supported for sampling`);
  }
  if (cs === model.first_stage_model && key === 'concat') return 'inpainting';
  if (key === 'hybrid' && inpaintConcat(model) && (cs instanceof FrozenCLIPEmbedder || cs instanceof BERTEmbedder)) return 'text-inpainting';
  if (cs instanceof SpatialRescaler && key === 'concat') return 'semantic';
  if (cs instanceof Identity && key === 'concat') return 'superres';
  throw new TaskError(`no sampling task for conditioning_key ${key} with ${cs ? cs.constructor.name : 'no'} conditioning encoder (cond_stage_key ${model.config.cond_stage_key})`);
}

/** Throws a message naming what the model does instead when it was not trained for `task`. */
export function requireTask(model: LatentDiffusion, task: TaskName): void {
  const actual = modelTask(model);
  if (actual !== task) throw new TaskError(`this is ${describeTask(actual)}, not ${describeTask(task)}`);
}

/** Where an image size comes from, when it is a picture's: the input, how messages call it, its scale to the output. */
export interface SizeSource {
  input: TaskInput;
  what: string;
  /** Output pixels per input pixel (super-resolution: f). */
  scale?: number;
}

/** Image sizes must be multiples of the first stage factor f times the UNet's downsampling. */
export function latentShape(model: LatentDiffusion, n: number, H: number, W: number, src?: SizeSource): number[] {
  const f = model.firstStageFactor, u = model.unetFactor;
  const m = f * u;
  for (const [name, input, v] of [['height', 'H', H], ['width', 'W', W]] as const) {
    if (src) {
      const s = src.scale ?? 1;
      if (v % m === 0) continue;
      const unit = m % s === 0 ? m / s : m;
      const near = Math.max(unit, Math.round(v / s / unit) * unit);
      const why = s === 1 ? `f = ${f} × the UNet's ${u}× downsampling` : `its ×${s} output a multiple of ${m}: f = ${f} × the UNet's ${u}× downsampling`;
      throw new TaskInputError(src.input, `${src.what} is ${W / s}×${H / s} pixels; its ${name} must be a multiple of ${unit} (${why}), e.g. ${near}`);
    }
    if (!Number.isInteger(v) || v <= 0) throw new TaskInputError(input, `image ${name} must be a positive integer, got ${v}`);
    if (v % f !== 0) throw new TaskInputError(input, `image ${name} ${v} is not divisible by the first stage's downsampling factor f = ${f}`);
    if (v % m !== 0) throw new TaskInputError(input, `image ${name} ${v} must be a multiple of ${m} (f = ${f} × the UNet's ${u}× downsampling); try ${Math.max(m, Math.round(v / m) * m)}`);
  }
  if (!Number.isInteger(n) || n < 1) throw new TaskInputError('n', `the number of samples must be a positive integer, got ${n}`);
  return [n, model.config.channels, H / f, W / f];
}

/** A picture the model reads as RGB (or a mask as gray) must be opaque: what lies under transparent pixels is arbitrary. */
export function checkOpaque(img: Image, input: TaskInput, what: string): void {
  if (img.channels !== 4) return;
  for (let i = 0; i < img.width * img.height; i++) {
    const a = img.data[4 * i + 3];
    if (a !== 255) {
      throw new TaskInputError(input, `${what} has transparent pixels (alpha ${a} at (${i % img.width}, ${Math.floor(i / img.width)})); ` +
        'the model reads only its colours, so what lies under them would decide the result: flatten it onto a background first');
    }
  }
}

/** How the first stage reads a picture: 'gray' for a one-channel autoencoder (MNIST), else 'rgb'. */
export function pictureMode(model: LatentDiffusion): 'rgb' | 'gray' {
  const dd = (model.first_stage_model as unknown as { _ddconfig?: { in_channels: number } })._ddconfig;
  return dd?.in_channels === 1 ? 'gray' : 'rgb';
}

/** The training image size: latent image_size × f. */
export function defaultImageSize(model: LatentDiffusion): number {
  return model.config.image_size * model.firstStageFactor;
}

/** Image size: as given, else that of a given x_T, else the training size. */
export function imageSize(model: LatentDiffusion, o: { H?: number; W?: number; xT?: T.Tensor }): [number, number] {
  const f = model.firstStageFactor, d = defaultImageSize(model);
  return [o.H ?? (o.xT ? o.xT.shape[2] * f : d), o.W ?? (o.xT ? o.xT.shape[3] * f : d)];
}

export interface SamplingSettings {
  sampler?: SamplerName;
  steps?: number;
  eta?: number;
  scale?: number;
  /** Image i of the batch is drawn with its own generator seeded seed + i (default DEFAULTS.seed). */
  seed?: number;
  /** A fixed starting latent (e.g. the reference's x_T). */
  xT?: T.Tensor;
  onStep?: StepCallback;
  /** k-diffusion samplers: the noise levels (default: the model's timesteps) and the added noise's scale. */
  schedule?: SigmaSchedule;
  s_noise?: number;
  /** Run the UNet and the decoder over overlapping crops (the reference's split_input_params). */
  tiling?: SplitInputParams | null;
  /** Bytes of packed weights the sampler keeps from step to step (default T.weightCacheBudget()). */
  weightCacheBytes?: number;
}

/** A value of the generation parameters (recorded as JSON in the PNG `parameters` chunk). */
export type ParamValue = string | number | boolean | null | ParamValue[] | { [k: string]: ParamValue };

export interface TaskResult {
  /** Final latents [B, C, h, w]. */
  samples: T.Tensor;
  /** The starting latent used. */
  start: T.Tensor;
  /** Decoded images [B, 3, H, W] in [−1, 1] (before any compositing). */
  decoded: T.Tensor;
  /** The output pictures (uint8; composited for inpainting). */
  images: Image[];
  /** The seed of each image (seed + i). */
  seeds: number[];
  cancelled: boolean;
  /** Generation parameters worth recording (numbers stay numbers). */
  params: Record<string, ParamValue>;
}

/** The seed of the first image; image i uses seed + i. */
export function firstSeed(seed: number | undefined): number {
  const s = seed ?? DEFAULTS.seed;
  if (!Number.isSafeInteger(s) || s < 0) throw new TaskInputError('seed', `the seed must be a non-negative integer, got ${s}`);
  return s;
}

/**
 * Noise with one generator per image: row i of every [B, …] draw comes from the generator seeded
 * seeds[i], so an image does not depend on the others in its batch (seed + i alone gives it again).
 */
export function perImageNoise(seeds: readonly number[]): NoiseFn {
  const fns = seeds.map((s) => seededNoise(s));
  return (shape) => {
    if (shape[0] !== fns.length) throw new RangeError(`perImageNoise: a draw of batch ${shape[0]} from ${fns.length} per-image generators`);
    if (fns.length === 1) return fns[0](shape);
    const row = [1, ...shape.slice(1)];
    return T.tidy(() => T.concat(fns.map((f) => f(row)), 0));
  };
}

/** Sample latents with the common settings, decode them, convert to 8-bit pictures. */
export function runSampling(
  model: LatentDiffusion,
  s: SamplingSettings,
  cond: Conditioning,
  uncond: Conditioning | undefined,
  shape: number[],
  extra: Partial<LatentSampleOptions> = {},
  params: Record<string, ParamValue> = {},
): TaskResult {
  const sampler = s.sampler ?? DEFAULTS.sampler;
  const steps = s.steps ?? (sampler === 'ddpm' ? model.numTimesteps : DEFAULTS.steps);
  const seed = firstSeed(s.seed);
  const seeds = Array.from({ length: shape[0] }, (_, i) => seed + i);
  const noise = perImageNoise(seeds);
  if (s.xT && !T.sameShape(s.xT.shape, shape)) throw new TaskInputError('xT', `x_T has shape [${s.xT.shape}], this task needs [${shape}]`);
  return T.noGrad(() => {
    const r = sampleLatents(model, {
      sampler, steps, eta: s.eta, schedule: s.schedule, s_noise: s.s_noise, scale: s.scale ?? 1, cond, uncond, shape, xT: s.xT, noise, onStep: s.onStep, tiling: s.tiling, weightCacheBytes: s.weightCacheBytes, ...extra,
    });
    const decoded = model.decodeFirstStage(r.x, { tiling: s.tiling });
    const spec = samplerSpec(sampler);
    const all: Record<string, ParamValue> = {
      sampler, steps: sampler === 'ddpm' ? (extra.init ? Math.round(extra.init.strength * model.numTimesteps) : model.numTimesteps) : steps,
      eta: s.eta ?? spec.defaults.eta ?? 0, seed, ...params,
    };
    if (spec.options.includes('schedule')) all.schedule = s.schedule ?? spec.defaults.schedule ?? 'default';
    if ((s.scale ?? 1) !== 1 && uncond) all.scale = s.scale!;
    return { samples: r.x, start: r.start, decoded, images: tensorToImages(decoded), seeds, cancelled: r.cancelled, params: all };
  });
}

/** F.interpolate(x, size, mode='nearest'): source index floor(i · in / out). */
export function resizeNearest(x: T.Tensor, size: [number, number]): T.Tensor {
  const [, , H, W] = x.shape;
  const [oh, ow] = size;
  if (oh === H && ow === W) return x;
  const rows = Array.from({ length: oh }, (_, i) => Math.min(Math.floor((i * H) / oh), H - 1));
  const cols = Array.from({ length: ow }, (_, j) => Math.min(Math.floor((j * W) / ow), W - 1));
  return T.indexSelect(T.indexSelect(x, 2, T.tensor(rows, [oh], 'int32')), 3, T.tensor(cols, [ow], 'int32'));
}

/** Repeat a [1, …] tensor n times along the batch axis. */
export function repeatBatch(x: T.Tensor, n: number): T.Tensor {
  if (x.shape[0] === n) return x;
  if (x.shape[0] !== 1) throw new RangeError(`repeatBatch: batch ${x.shape[0]} cannot become ${n}`);
  return T.contiguous(T.expand(x, [n, ...x.shape.slice(1)]));
}

/**
 * A picture [1, C, H, W] in [−1, 1] through the first stage, n times: a KL posterior is drawn once per
 * image from a generator of that image's seed (seed + i), so image i alone gets the same latent.
 */
export function encodePerImage(model: LatentDiffusion, picture: T.Tensor, n: number, seed: number): T.Tensor {
  return T.noGrad(() => {
    const enc = model.encodeFirstStage(picture);
    return T.concat(Array.from({ length: n }, (_, i) => model.getFirstStageEncoding(enc, new T.Generator(seed + i + 0x5eed))), 0);
  });
}
