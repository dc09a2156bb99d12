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

export interface LabelMap {
  H: number;
  W: number;
  labels: ArrayLike<number>;
  nLabels: number;
}

/**
 * A label map checked against the model: one value per pixel (a gray picture, or int labels [H, W]),
 * every label one of its classes or 255, a size it can sample. Reads only the rescaler's shape.
 */
export function checkLabelMap(model: LatentDiffusion, seg: Image | T.Tensor): LabelMap {
  const rescaler = model.cond_stage_model as SpatialRescaler;
  const mapper = rescaler.channel_mapper as unknown as { weight?: T.Tensor } | null;
  const nLabels = mapper?.weight?.shape[1];
  if (!nLabels) throw new TaskError('the SpatialRescaler has no channel mapper: cannot tell the number of labels');
  let H: number, W: number, labels: ArrayLike<number>;
  if (seg instanceof T.Tensor) {
    if (seg.ndim !== 2) throw new TaskInputError('segmentation', `a label tensor must be [H, W], got [${seg.shape}]`);
    [H, W] = seg.shape;
    labels = seg.toArray();
  } else {
    H = seg.height;
    W = seg.width;
    const c = seg.channels, d = seg.data;
    for (let i = 0; i < H * W && c > 1; i++) {
      const rgbDiffer = d[c * i] !== d[c * i + 1] || d[c * i] !== d[c * i + 2];
      if (rgbDiffer || (c === 4 && d[c * i + 3] !== 255)) {
        throw new TaskInputError('segmentation', `a label map holds one class index per pixel (a gray picture), but pixel (${i % W}, ${Math.floor(i / W)}) is ` +
          `${c === 4 ? `RGBA (${d[c * i]}, ${d[c * i + 1]}, ${d[c * i + 2]}, ${d[c * i + 3]})` : `RGB (${d[c * i]}, ${d[c * i + 1]}, ${d[c * i + 2]})`}; ` +
          'a colour-coded or palette picture must be saved as its indices first');
      }
    }
    labels = Array.from({ length: H * W }, (_, i) => d[i * c]);
  }
  for (let i = 0; i < H * W; i++) {
    const l = labels[i];
    if (l === 255 || l < 0) continue;
    if (!Number.isInteger(l) || l >= nLabels) throw new TaskInputError('segmentation', `label ${l} at pixel (${i % W}, ${Math.floor(i / W)}) is outside this model's ${nLabels} classes (0…${nLabels - 1}, 255 = unlabelled)`);
  }
  return { H, W, labels, nLabels };
}

export function sampleSemantic(model: LatentDiffusion, o: SemanticOptions): TaskResult {
  requireTask(model, 'semantic');
  const { H, W, labels, nLabels } = checkLabelMap(model, o.segmentation);
  const n = o.n ?? o.xT?.shape[0] ?? 1;
  const shape = latentShape(model, n, H, W, { input: 'segmentation', what: 'the label map' });
  const cond = T.noGrad(() => repeatBatch(model.getLearnedConditioning(oneHot(labels, H, W, nLabels)), n));
  if (cond.shape[2] !== shape[2] || cond.shape[3] !== shape[3]) {
    throw new TaskError(`the rescaled label map is ${cond.shape[3]}×${cond.shape[2]} but the latent is ${shape[3]}×${shape[2]}`);
  }
  return runSampling(model, o, cond, undefined, shape, {}, { task: 'semantic', width: W, height: H, labels: nLabels });
}
