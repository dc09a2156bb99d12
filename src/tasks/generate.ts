// `sample(model, options)`: one entry for every task. The task follows from the model's conditioning;
// the options given must fit it (planSample checks them all before any work). Image i of the request
// uses seed + i (its own generator), so it comes out the same alone, in any batch, and in chunks of
// `batchSize` (which bounds the memory of a run). `sampleBatches` hands out each chunk as it is done.

import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { StepCallback } from '../diffusion/samplers/index.js';
import type { Image } from '../io/image.js';
import type { LoadedModel } from '../loader/model.js';
import { sampleClassConditional } from './class-conditional.js';
import type { ParamValue, SamplingSettings, TaskName, TaskResult } from './common.js';
import { sampleImg2Img } from './img2img.js';
import { sampleInpainting } from './inpainting.js';
import { img2imgStrength, negativeList, planSample, type SampleOptions, type SamplePlan } from './plan.js';
import { sampleSemantic } from './semantic.js';
import { sampleSuperResolution } from './super-resolution.js';
import { sampleTextInpainting } from './text-inpainting.js';
import { sampleTextToImage } from './text-to-image.js';
import { sampleUnconditional } from './unconditional.js';

export { planSample, type SampleOptions, type SamplePlan, type TunedDefaults } from './plan.js';

/** What each image needs to be made again alone: its seed, class or prompt. */
export interface PerImage {
  seed: number;
  classLabel?: number;
  prompt?: string;
}

export interface SampleResult {
  task: TaskName;
  images: Image[];
  perImage: PerImage[];
  /** The settings of the run (numbers stay numbers). */
  params: Record<string, ParamValue>;
  /** Final latents and starting latents [N, C, h, w]. */
  samples: T.Tensor;
  start: T.Tensor;
  cancelled: boolean;
}

/** One batch of a request: its images (indices first … first + images.length − 1 of the request). */
export interface SampleBatch extends SampleResult {
  first: number;
  batch: number;
  batches: number;
}

function isLoaded(m: LatentDiffusion | LoadedModel): m is LoadedModel {
  return 'model' in m && 'files' in m;
}

function runParams(r: TaskResult, plan: SamplePlan): Record<string, ParamValue> {
  const params = { ...r.params };
  delete params.seed;
  delete params.classes;
  delete params.prompt;
  if (plan.batches > 1) params.batch_size = plan.batchSize;
  return params;
}

/**
 * Sample a request batch by batch: every input is checked first (nothing runs on bad input), then each
 * batch is yielded as soon as it is decoded. A cancelled batch (onStep returned false) is the last.
 */
export function* sampleBatches(m: LatentDiffusion | LoadedModel, o: SampleOptions = {}, plan?: SamplePlan): Generator<SampleBatch, void, void> {
  const model = isLoaded(m) ? m.model : m;
  const p = plan ?? planSample(model, o, (isLoaded(m) ? m.info?.defaults : undefined) ?? {});
  const { total, batchSize: bs, batches } = p;
  for (let c = 0; c < batches; c++) {
    const lo = c * bs, hi = Math.min(total, lo + bs), k = hi - lo;
    const onStep: StepCallback | undefined = o.onStep && ((info) => o.onStep!({ ...info, step: c * info.total + info.step, total: batches * info.total }));
    const xT = o.xT && batches > 1 ? T.contiguous(T.slice(o.xT, 0, lo, hi)) : o.xT;
    const s: SamplingSettings = { sampler: p.sampler, steps: p.steps, eta: p.eta, scale: p.scale, seed: p.seed + lo, onStep, xT, schedule: o.schedule, weightCacheBytes: o.weightCacheBytes };
    // Everything but the latents (the decoded batch, the conditioning) is released before the next batch.
    let r: TaskResult | undefined;
    const kept = T.tidy(() => {
      r = run(model, p, o, s, k, p.perClass.slice(lo, hi), p.perPrompt.slice(lo, hi));
      return { samples: r.samples, start: r.start };
    });
    const perImage = r!.seeds.map((sd, i) => ({
      seed: sd, ...(p.perClass.length ? { classLabel: p.perClass[lo + i] } : {}), ...(p.perPrompt.length ? { prompt: p.perPrompt[lo + i] } : {}),
    }));
    yield { task: p.task, images: r!.images, perImage, params: runParams(r!, p), samples: kept.samples, start: kept.start, cancelled: r!.cancelled, first: lo, batch: c, batches };
    if (r!.cancelled) return;
  }
}

/** Sample images from a model (or a loaded model, whose model.json defaults then apply). */
export function sample(m: LatentDiffusion | LoadedModel, o: SampleOptions = {}): SampleResult {
  const parts = [...sampleBatches(m, o)];
  const cat = (ts: T.Tensor[]) => (ts.length === 1 ? ts[0] : T.concat(ts, 0));
  return {
    task: parts[0].task, images: parts.flatMap((b) => b.images), perImage: parts.flatMap((b) => b.perImage), params: parts[0].params,
    samples: cat(parts.map((b) => b.samples)), start: cat(parts.map((b) => b.start)), cancelled: parts.at(-1)!.cancelled,
  };
}

function run(model: LatentDiffusion, p: SamplePlan, o: SampleOptions, s: SamplingSettings, n: number, classes: number[], prompts: string[]): TaskResult {
  if (p.init) {
    return sampleImg2Img(model, {
      ...s, init: p.init, strength: img2imgStrength(o), mask: o.mask, n, prompts: prompts.length ? prompts : undefined,
      classes: classes.length ? classes : undefined, uncondClass: o.uncondClass, vocabFile: o.vocab, negativePrompts: negativeList(o),
    });
  }
  switch (p.task) {
    case 'unconditional':
      return sampleUnconditional(model, { ...s, n, H: o.H, W: o.W });
    case 'class':
      return sampleClassConditional(model, { ...s, classes, uncondClass: o.uncondClass, H: o.H, W: o.W });
    case 'text':
      return sampleTextToImage(model, { ...s, prompts, vocabFile: o.vocab, negativePrompts: negativeList(o), H: o.H, W: o.W });
    case 'inpainting':
      return sampleInpainting(model, { ...s, image: p.inpaintImage!, mask: o.mask!, n });
    case 'text-inpainting':
      return sampleTextInpainting(model, { ...s, image: p.inpaintImage!, mask: o.mask!, prompts, vocabFile: o.vocab, negativePrompts: negativeList(o) });
    case 'superres':
      return sampleSuperResolution(model, { ...s, lowRes: o.lowRes!, n, tiled: o.tile ?? 'auto' });
    case 'semantic':
      return sampleSemantic(model, { ...s, segmentation: o.segmentation!, n });
  }
}
