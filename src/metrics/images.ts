// Image sets for evaluation: a folder of PNG/JPEG files (recursive) or a dataset, as float32 [C, H, W]
// arrays in [-1, 1] with an optional class label per image, and batching them into tensors.
//
// The class of a generated image is read, in order, from: its PNG `parameters` text chunk (JSON as
// `ldm sample` writes it: `classLabel`; also `class` / `class_label`, or `classes` — a list or a comma-separated string, one
// label per image of the run — indexed by `index`); a parent folder named by an integer (`3/x.png`); a
// `class<N>` / `class-<N>` / `class_<N>` part of the file name.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { imageToTensor, readImage, readPngText } from '../io/image.js';

export interface ImageSet {
  images: Float32Array[];
  channels: number;
  height: number;
  width: number;
  /** Class label per image (undefined where unknown). */
  labels: (number | undefined)[];
  /** File (relative to the folder) or dataset index of each image, for messages. */
  names: string[];
}

/** How a dataset looks to the evaluation (src/data's Dataset fits). */
export interface ExampleSource {
  readonly length: number;
  readonly channels: number;
  readonly size: number;
  get(i: number): { image: Float32Array; class_label?: number };
}

/** `n` examples of `ds` (all when n is undefined): indices 0..n-1, or the given ones. */
export function datasetImages(ds: ExampleSource, indices?: ArrayLike<number>): ImageSet {
  const idx = indices ?? Int32Array.from({ length: ds.length }, (_, i) => i);
  const set: ImageSet = { images: [], channels: ds.channels, height: ds.size, width: ds.size, labels: [], names: [] };
  for (let k = 0; k < idx.length; k++) {
    const ex = ds.get(idx[k]);
    set.images.push(ex.image);
    set.labels.push(ex.class_label);
    set.names.push(`#${idx[k]}`);
  }
  return set;
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;

function listImages(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const r = path.join(rel, name);
    if (statSync(path.join(dir, r)).isDirectory()) out.push(...listImages(dir, r));
    else if (IMAGE_FILE.test(name) && !/-grid\.png$/i.test(name)) out.push(r);
  }
  return out;
}

/** The class label recorded for one image file (see the header), or undefined. */
export function labelOfFile(root: string, rel: string): number | undefined {
  const file = path.join(root, rel);
  if (/\.png$/i.test(rel)) {
    const text = readPngText(file);
    if (text.parameters) {
      let p: Record<string, unknown> | null = null;
      try {
        p = JSON.parse(text.parameters) as Record<string, unknown>;
      } catch {
        p = null; // not JSON: other software's parameters; fall through to the name
      }
      const v = p ? labelFromParameters(p) : undefined;
      if (v !== undefined) return v;
    }
  }
  const parent = path.basename(path.dirname(rel));
  if (/^\d+$/.test(parent)) return Number(parent);
  const m = /(?:^|[^a-z])class[-_]?(\d+)/i.exec(path.basename(rel));
  return m ? Number(m[1]) : undefined;
}

function labelFromParameters(p: Record<string, unknown>): number | undefined {
  const asInt = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : undefined);
  for (const k of ['classLabel', 'class', 'class_label']) {
    const v = asInt(p[k]);
    if (v !== undefined) return v;
  }
  const list = Array.isArray(p.classes) ? p.classes : typeof p.classes === 'string' ? p.classes.split(',') : null;
  const index = asInt(p.index);
  if (list && list.length === 1) return asInt(list[0]);
  if (list && index !== undefined && index < list.length) return asInt(list[index]);
  return undefined;
}

/** Every image under `dir` (sorted by path; `*-grid.png` skipped), as `channels` (1 = luma, 3 = RGB). */
export function loadImageFolder(dir: string, channels: 1 | 3): ImageSet {
  let files: string[];
  try {
    files = listImages(dir);
  } catch (e) {
    throw new Error(`cannot list images in ${dir}: ${(e as Error).message}`);
  }
  if (files.length === 0) throw new Error(`${dir}: no PNG or JPEG images`);
  const set: ImageSet = { images: [], channels, height: 0, width: 0, labels: [], names: files };
  for (const rel of files) {
    const img = readImage(path.join(dir, rel));
    if (set.images.length === 0) {
      set.height = img.height;
      set.width = img.width;
    } else if (img.height !== set.height || img.width !== set.width) {
      throw new Error(`${path.join(dir, rel)}: ${img.width}×${img.height}, but ${files[0]} is ${set.width}×${set.height} (all images must have one size)`);
    }
    const t = imageToTensor(img, channels === 1 ? 'gray' : 'rgb');
    set.images.push((T.contiguousData(t) as Float32Array).slice());
    set.labels.push(labelOfFile(dir, rel));
  }
  return set;
}

/** Batches [B, C, H, W] of the set's images (created lazily). */
export function* setBatches(set: ImageSet, batchSize: number): Generator<T.Tensor> {
  const per = set.channels * set.height * set.width;
  for (let i = 0; i < set.images.length; i += batchSize) {
    const n = Math.min(batchSize, set.images.length - i);
    const data = new Float32Array(n * per);
    for (let k = 0; k < n; k++) {
      const im = set.images[i + k];
      if (im.length !== per) throw new RangeError(`image ${set.names[i + k]}: ${im.length} values, expected [${set.channels}, ${set.height}, ${set.width}]`);
      data.set(im, k * per);
    }
    yield T.tensor(data, [n, set.channels, set.height, set.width]);
  }
}
