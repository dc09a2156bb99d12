// A batch's buffers (src/data/assemble.ts) as tensors, on the main thread: images [B, C, H, W] float32,
// class labels int64 [B] (torch's default_collate), strings as lists.

import * as T from '../engine/index.js';
import type { RawBatch } from './assemble.js';
import type { Dataset } from './types.js';

export type { RawBatch } from './assemble.js';

export interface Batch {
  /** [B, C, H, W] float32 in [-1, 1]. */
  image: T.Tensor;
  /** int64 [B]. */
  class_label?: T.Tensor;
  caption?: string[];
  human_label?: string[];
  /** Dataset indices of the examples, in batch order. */
  indices: number[];
}

/** Tensors over the raw buffers (not copied). They are kept out of any open tidy scope: the caller owns them. */
export function toBatch(raw: RawBatch, indices: number[], ds: Dataset): Batch {
  const B = indices.length;
  const out: Batch = { image: T.keep(T.tensor(raw.image, [B, ds.channels, ds.size, ds.size])), indices };
  if (raw.labels) {
    const l = new BigInt64Array(B);
    for (let b = 0; b < B; b++) l[b] = BigInt(raw.labels[b]);
    out.class_label = T.keep(T.tensor(l, [B]));
  }
  if (raw.captions) out.caption = raw.captions;
  if (raw.humanLabels) out.human_label = raw.humanLabels;
  return out;
}
