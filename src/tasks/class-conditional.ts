// Class-conditional sampling (cin256 / cin256-v2, scripts/latent_imagenet_diffusion.ipynb): the class
// label through ClassEmbedder as a length-1 cross-attention context; with guidance the unconditional
// input is the extra "no class" label (class 1000 of cin256-v2's 1001 classes, i.e. the last index).

import * as T from '../engine/index.js';
import { ClassEmbedder } from '../models/encoders/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageSize, latentShape, requireTask, runSampling, type ParamValue, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError, TaskInputError } from './errors.js';

export interface ClassOptions extends SamplingSettings {
  /** One class label per sample. */
  classes: number[];
  /** The label used as "unconditional" under guidance (default: the last class, if the model has one). */
  uncondClass?: number;
  H?: number;
  W?: number;
}

export function numClasses(model: LatentDiffusion): number {
  const cs = model.cond_stage_model;
  if (!(cs instanceof ClassEmbedder)) throw new TaskError('this model has no class embedder');
  return cs.nClasses;
}

/**
 * Check the labels and, with guidance (scale ≠ 1), the "no class" label against the model's classes;
 * returns the unconditional label guidance uses. Reads only the embedder's size (a shape-only build does).
 */
export function checkClasses(model: LatentDiffusion, classes: readonly number[], scale: number, uncondClass?: number): number | undefined {
  const n = numClasses(model);
  for (const c of classes) {
    if (!Number.isInteger(c)) throw new TaskInputError('classLabel', `class labels are integers, got ${c}`);
    if (c < 0 || c >= n) throw new TaskInputError('classLabel', `class ${c} is outside this model's classes 0…${n - 1}`);
  }
  if (uncondClass !== undefined && (!Number.isInteger(uncondClass) || uncondClass < 0 || uncondClass >= n)) {
    throw new TaskInputError('uncondClass', `unconditional class ${uncondClass} is outside this model's classes 0…${n - 1}`);
  }
  if (scale === 1) return undefined;
  if (uncondClass !== undefined) return uncondClass;
  if (n === 1000) throw new TaskInputError('scale', 'guidance (scale ≠ 1) needs an unconditional class, and this 1000-class model has none; sample with scale 1');
  return n - 1;
}

/** The conditionings for the given labels and, with guidance, the unconditional label. */
export function classConditioning(model: LatentDiffusion, classes: number[], scale: number, uncondClass?: number): { cond: Conditioning; uncond?: Conditioning; uncondClass?: number } {
  const u = checkClasses(model, classes, scale, uncondClass);
  const embed = (labels: number[]) => {
    const t = T.tensor(labels, [labels.length], 'int64');
    return model.conditioningKey === 'adm' ? t : model.getLearnedConditioning(t);
  };
  const cond = embed(classes);
  if (u === undefined) return { cond };
  return { cond, uncond: embed(classes.map(() => u)), uncondClass: u };
}

export function sampleClassConditional(model: LatentDiffusion, o: ClassOptions): TaskResult {
  requireTask(model, 'class');
  if (o.classes.length === 0) throw new TaskInputError('classLabel', 'this is a class-conditional model: give at least one class label');
  const shape = latentShape(model, o.classes.length, ...imageSize(model, o));
  const scale = o.scale ?? 1;
  const { cond, uncond, uncondClass } = T.noGrad(() => classConditioning(model, o.classes, scale, o.uncondClass));
  const params: Record<string, ParamValue> = { task: 'class', classes: o.classes, width: shape[3] * model.firstStageFactor, height: shape[2] * model.firstStageFactor };
  if (uncondClass !== undefined) params.uncond_class = uncondClass;
  return runSampling(model, o, cond, uncond, shape, {}, params);
}
