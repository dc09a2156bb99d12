// Assembling examples into one batch's flat buffers: the work a loader worker does (this file imports no
// engine code, so a worker starts quickly). Mirrors torch's default_collate for the fields the trainers
// read: images stacked, class labels, strings as lists.

import type { AugDraw, Dataset } from './types.js';

/** A batch as transferable buffers. */
export interface RawBatch {
  image: Float32Array;
  /** Present when every example has a class label. */
  labels: Int32Array | null;
  captions: string[] | null;
  humanLabels: string[] | null;
}

function allOrNone(name: string, have: number, n: number, first: number): boolean {
  if (have !== 0 && have !== n) throw new Error(`batch: ${name} is missing for some examples (e.g. index ${first}) but present for others`);
  return have === n;
}

export function assembleBatch(ds: Dataset, indices: ArrayLike<number>, draws: AugDraw[] | null): RawBatch {
  const B = indices.length;
  const per = ds.channels * ds.size * ds.size;
  const image = new Float32Array(B * per);
  const labels = new Int32Array(B);
  const captions: string[] = [], human: string[] = [];
  let nl = 0, nc = 0, nh = 0, missL = -1, missC = -1, missH = -1;
  for (let b = 0; b < B; b++) {
    const i = indices[b];
    const ex = ds.get(i, draws ? draws[b] : undefined);
    if (ex.image.length !== per) {
      throw new Error(`batch: example ${i}${ex.relpath ? ` (${ex.relpath})` : ''} has ${ex.image.length} values, expected ${ds.channels}×${ds.size}×${ds.size}`);
    }
    image.set(ex.image, b * per);
    if (ex.class_label !== undefined) (labels[b] = ex.class_label), nl++;
    else if (missL < 0) missL = i;
    if (ex.caption !== undefined) captions.push(ex.caption), nc++;
    else if (missC < 0) missC = i;
    if (ex.human_label !== undefined) human.push(ex.human_label), nh++;
    else if (missH < 0) missH = i;
  }
  return {
    image,
    labels: allOrNone('class_label', nl, B, missL) ? labels : null,
    captions: allOrNone('caption', nc, B, missC) ? captions : null,
    humanLabels: allOrNone('human_label', nh, B, missH) ? human : null,
  };
}
