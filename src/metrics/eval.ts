// The evaluations behind `ldm eval`:
//   reconstruction — an autoencoder on held-out images: PSNR, SSIM (and LPIPS with its weights);
//   generation     — generated vs real images in a feature space: FID, improved precision / recall, and the
//                    accuracy of a classifier on the class each sample was asked for.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { readCheckpoint } from '../io/ckpt.js';
import { loadCheckpointInto } from '../loader/checkpoint.js';
import { resolveModelFiles } from '../loader/model.js';
import { AutoencoderKL, VQModel, VQModelInterface } from '../models/autoencoder/index.js';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { buildFromConfigFile } from '../loader/targets.js';
import { skipInit } from '../nn/init.js';
import { LPIPS, loadLpipsWeights } from '../models/losses/lpips.js';
import { extractFeatures, type FeatureNet } from './feature-net.js';
import { fidFromFeatures } from './fid.js';
import { psnr, ssim } from './image-quality.js';
import { setBatches, type ImageSet } from './images.js';
import { predict, type MnistClassifier } from './mnist-classifier.js';
import { precisionRecall } from './precision-recall.js';

// ---- reconstruction ---------------------------------------------------------------------------------------

export type FirstStage = AutoencoderKL | VQModel | VQModelInterface;

/** x → the autoencoder's deterministic reconstruction (the posterior mode for KL; quantized codes for VQ), clamped to [-1, 1]. */
export function reconstruct(ae: FirstStage, x: T.Tensor): T.Tensor {
  const y = ae instanceof AutoencoderKL ? ae.decode(ae.encode(x).mode()) : ae instanceof VQModel ? ae.forward(x).dec : ae.decode(ae.encode(x));
  return T.clamp(y, -1, 1);
}

/**
 * The autoencoder a path names: a training run folder (its checkpoints/last), a checkpoint / model folder
 * (config.yaml + weights) or a weights file (with `config`, or a config.yaml beside it). An autoencoder
 * config gives the model itself; a LatentDiffusion config gives its first stage.
 */
export function loadAutoencoder(source: string, config?: string): { model: FirstStage; files: { config: string; ckpt: string } } {
  if (!existsSync(source)) throw new Error(`--autoencoder: ${source} does not exist`);
  let src = source;
  if (statSync(src).isDirectory() && existsSync(path.join(src, 'checkpoints', 'last'))) src = path.join(src, 'checkpoints', 'last');
  const files = resolveModelFiles(src, config);
  const built = skipInit(() => buildFromConfigFile<unknown>(files.config));
  let model: FirstStage;
  const ck = readCheckpoint(files.ckpt);
  try {
    if (built instanceof LatentDiffusion) {
      const fs = built.first_stage_model;
      if (!(fs instanceof AutoencoderKL || fs instanceof VQModel || fs instanceof VQModelInterface)) throw new Error(`${files.config}: the first stage is not an autoencoder`);
      model = fs;
      model.loss = null;
      loadCheckpointInto(model, ck, { stripPrefix: 'first_stage_model.' });
    } else if (built instanceof AutoencoderKL || built instanceof VQModel || built instanceof VQModelInterface) {
      model = built;
      model.loss = null; // the training objective (LPIPS, discriminator) is not needed to reconstruct
      loadCheckpointInto(model, ck, {});
    } else {
      throw new Error(`${files.config}: model.target is neither an autoencoder (AutoencoderKL / VQModel) nor a LatentDiffusion`);
    }
  } finally {
    ck.close();
  }
  return { model: model.eval(), files };
}

/** LPIPS with weights from one file (a full LPIPS state dict, or a checkpoint holding `loss.perceptual_loss.*`), or VGG16 + lin files. */
export function loadLpips(files: { full?: string; vgg16?: string; lin?: string }): LPIPS {
  const lp = skipInit(() => new LPIPS(false)); // every weight comes from the files
  let prefix = '';
  if (files.full) {
    const c = readCheckpoint(files.full);
    try {
      const keys = [...c.stateDict.keys()];
      prefix = ['first_stage_model.loss.perceptual_loss.', 'loss.perceptual_loss.', 'perceptual_loss.'].find((p) => keys.some((k) => k.startsWith(`${p}net.`))) ?? '';
    } finally {
      c.close();
    }
  }
  loadLpipsWeights(lp, { ...files, prefix });
  return lp.eval();
}

export interface ReconstructionReport {
  n: number;
  /** Mean over images of the per-image PSNR (dB); Infinity when every image is reproduced exactly. */
  psnr: number;
  /** Images reproduced exactly (PSNR ∞), left out of `psnr_finite`. */
  psnr_identical: number;
  /** Mean PSNR over the images with a finite value. */
  psnr_finite: number;
  ssim: number;
  lpips?: number;
  data_range: number;
}

/**
 * PSNR / SSIM and optionally LPIPS of reconstructions of `set`. PSNR and SSIM see the images as pixel
 * intensities in [0, 1] ((x + 1)/2, data range 1) — the same numbers as on 8-bit images with data range 255
 * (SSIM's luminance term is not shift-invariant, so the [-1, 1] tensors are not scored directly).
 */
export function evaluateReconstruction(recon: (x: T.Tensor) => T.Tensor, set: ImageSet, o: { batchSize?: number; lpips?: LPIPS; onBatch?: (done: number) => void } = {}): ReconstructionReport {
  const range = 1;
  const ps: number[] = [], ss: number[] = [], lp: number[] = [];
  const { channels: C, height: H, width: W } = set;
  T.noGrad(() => {
    for (const x of setBatches(set, o.batchSize ?? 16)) {
      T.tidy(() => {
        const y = recon(x);
        if (!T.sameShape(y.shape, x.shape)) throw new Error(`reconstruction has shape [${y.shape}], input [${x.shape}]`);
        const unit = (t: T.Tensor) => Float64Array.from(T.contiguousData(T.cast(t, 'float32')) as Float32Array, (v) => (v + 1) / 2);
        const xv = unit(x), yv = unit(y);
        const per = C * H * W;
        for (let b = 0; b < x.shape[0]; b++) {
          const a = { data: xv.subarray(b * per, (b + 1) * per), channels: C, height: H, width: W };
          const r = { data: yv.subarray(b * per, (b + 1) * per), channels: C, height: H, width: W };
          ps.push(psnr(a, r, range));
          ss.push(ssim(a, r, range));
        }
        if (o.lpips) {
          const rgb = (t: T.Tensor) => (C === 1 ? T.concat([t, t, t], 1) : t);
          const d = T.contiguousData(o.lpips.forward(rgb(x), rgb(y))) as Float32Array;
          lp.push(...d);
        }
      });
      o.onBatch?.(ps.length);
    }
  });
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const finite = ps.filter(Number.isFinite);
  const report: ReconstructionReport = {
    n: ps.length, psnr: mean(ps), psnr_identical: ps.length - finite.length, psnr_finite: finite.length ? mean(finite) : NaN, ssim: mean(ss), data_range: range,
  };
  if (o.lpips) report.lpips = mean(lp);
  return report;
}

// ---- generation ---------------------------------------------------------------------------------------------

export interface GenerationReport {
  feature_space: string;
  n_real: number;
  n_fake: number;
  fid: number;
  precision: number;
  recall: number;
  k: number;
  /** Fraction of labelled samples the classifier assigns to their requested class. */
  class_accuracy?: number;
  class_accuracy_n?: number;
  /** Per requested class: [correct, total]. */
  per_class?: Record<string, [number, number]>;
}

export function evaluateGeneration(real: ImageSet, fake: ImageSet, net: FeatureNet, o: { k?: number; batchSize?: number; classifier?: MnistClassifier } = {}): GenerationReport {
  const bs = o.batchSize ?? 50;
  const fr = extractFeatures(net, setBatches(real, bs));
  const ff = extractFeatures(net, setBatches(fake, bs));
  const pr = precisionRecall(fr, ff, o.k ?? 3);
  const report: GenerationReport = {
    feature_space: net.name, n_real: fr.n, n_fake: ff.n, fid: fidFromFeatures(fr, ff), precision: pr.precision, recall: pr.recall, k: pr.k,
  };
  if (o.classifier && fake.labels.some((l) => l !== undefined)) Object.assign(report, classAccuracy(o.classifier, fake, bs));
  return report;
}

/** Accuracy of the classifier on the labelled images of `set`. */
export function classAccuracy(net: MnistClassifier, set: ImageSet, batchSize = 100): { class_accuracy: number; class_accuracy_n: number; per_class: Record<string, [number, number]> } {
  const preds: number[] = [];
  for (const x of setBatches(set, batchSize)) preds.push(...predict(net, x));
  const per: Record<string, [number, number]> = {};
  let right = 0, n = 0;
  set.labels.forEach((l, i) => {
    if (l === undefined) return;
    const e = (per[String(l)] ??= [0, 0]);
    e[1]++;
    n++;
    if (preds[i] === l) {
      e[0]++;
      right++;
    }
  });
  return { class_accuracy: right / n, class_accuracy_n: n, per_class: per };
}
