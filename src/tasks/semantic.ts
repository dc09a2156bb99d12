// Semantic image synthesis (models/ldm/semantic_synthesis256/512): the label map becomes a one-hot
// tensor [1, n_labels, H, W], SpatialRescaler (2× bilinear ½ + 1×1 conv to 3 channels) brings it to the
// latent size, and it is concatenated to the noisy latent.

import * as T from '../engine/index.js';
import { SpatialRescaler } from '../models/encoders/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Image } from '../io/image.js';
import { latentShape, repeatBatch, requireTask, runSampling, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError, TaskInputError } from './errors.js';

export interface SemanticOptions extends SamplingSettings {
  /** A label map: an 8-bit image whose first channel holds class indices (255 = unlabelled), or int labels [H, W]. */
  segmentation: Image | T.Tensor;
  n?: number;
}

/** Label map → one-hot [1, nLabels, H, W] (255 and negative labels give an all-zero vector). */
export function oneHot(labels: ArrayLike<number>, H: number, W: number, nLabels: number): T.Tensor {
  const out = new Float32Array(nLabels * H * W);
  for (let i = 0; i < H * W; i++) {
    const l = labels[i];
    if (l === 255 || l < 0) continue;
    if (!Number.isInteger(l) || l >= nLabels) throw new TaskInputError('segmentation', `label ${l} at pixel (${i % W}, ${Math.floor(i / W)}) is outside this model's ${nLabels} classes (0…${nLabels - 1}, 255 = unlabelled)`);
    out[l * H * W + i] = 1;
  }
  return T.tensor(out, [1, nLabels, H, W]);
}

export function sampleSemantic(model: LatentDiffusion, o: SemanticOptions): TaskResult {
  requireTask(model, 'semantic');
  const rescaler = model.cond_stage_model as SpatialRescaler;
  const mapper = rescaler.channel_mapper as unknown as { weight?: T.Tensor } | null;
  const nLabels = mapper?.weight?.shape[1];
  if (!nLabels) throw new TaskError('the SpatialRescaler has no channel mapper: cannot tell the number of labels');
  let H: number, W: number, labels: ArrayLike<number>;
  if (o.segmentation instanceof T.Tensor) {
    if (o.segmentation.ndim !== 2) throw new TaskInputError('segmentation', `a label tensor must be [H, W], got [${o.segmentation.shape}]`);
    [H, W] = o.segmentation.shape;
    labels = o.segmentation.toArray();
  } else {
    const s = o.segmentation;
    H = s.height;
    W = s.width;
    labels = Array.from({ length: H * W }, (_, i) => s.data[i * s.channels]);
  }
  const n = o.n ?? o.xT?.shape[0] ?? 1;
  const shape = latentShape(model, n, H, W);
  const cond = T.noGrad(() => repeatBatch(model.getLearnedConditioning(oneHot(labels, H, W, nLabels)), n));
  if (cond.shape[2] !== shape[2] || cond.shape[3] !== shape[3]) {
    throw new TaskError(`the rescaled label map is ${cond.shape[3]}×${cond.shape[2]} but the latent is ${shape[3]}×${shape[2]}`);
  }
  return runSampling(model, o, cond, undefined, shape, {}, { task: 'semantic', width: W, height: H, labels: nLabels });
}
