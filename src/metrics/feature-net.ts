// The pluggable feature network of FID / precision / recall, and batched feature extraction.

import * as T from '../engine/index.js';
import { featureMatrix, type FeatureMatrix } from './fid.js';

export interface FeatureNet {
  /** Names the feature space in reports (e.g. "inception-v3-pool3", "mnist-classifier"). */
  readonly name: string;
  /** Feature size. */
  readonly dim: number;
  /** Images [B, C, H, W] in [-1, 1] → features, B·dim values (row b = image b). */
  features(images: T.Tensor): Float64Array | Float32Array;
}

/** A source of image batches: [B, C, H, W] float32 tensors in [-1, 1]. */
export type ImageBatches = Iterable<T.Tensor>;

/** The values of the tensor `fn` computes, copied out as float32 (every tensor it creates is released). */
export function valuesOf(fn: () => T.Tensor): Float32Array {
  let out = new Float32Array(0);
  T.noGrad(() => T.tidy(() => {
    out = (T.contiguousData(T.cast(fn(), 'float32')) as Float32Array).slice();
  }));
  return out;
}

/** Run `net` over every batch (under noGrad, each batch in its own memory scope) → rows of features. */
export function extractFeatures(net: FeatureNet, batches: ImageBatches): FeatureMatrix {
  const parts: (Float64Array | Float32Array)[] = [];
  let total = 0;
  T.noGrad(() => {
    for (const batch of batches) {
      let f: Float64Array | Float32Array = new Float32Array(0);
      T.tidy(() => {
        f = net.features(batch);
      });
      if (f.length !== batch.shape[0] * net.dim) throw new Error(`${net.name}: returned ${f.length} values for ${batch.shape[0]} images of ${net.dim} features`);
      parts.push(f);
      total += f.length;
    }
  });
  const out = new Float64Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return featureMatrix(out, net.dim);
}

/** Cut [N, C, H, W] into batches of at most `size` images (views). */
export function* batchesOf(x: T.Tensor, size: number): Generator<T.Tensor> {
  for (let i = 0; i < x.shape[0]; i += size) yield T.slice(x, 0, i, Math.min(i + size, x.shape[0]));
}
