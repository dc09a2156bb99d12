// A dataset of image files with per-file metadata (taming/data/base.py ImagePaths): each `get` reads and
// decodes the file and runs the reference preprocessing (src/data/preprocess.ts). Image folders and the
// emoji set are built on it; its WorkerSpec lets the loader's worker threads do the decoding.

import { readImage } from '../io/image.js';
import { cropFlip, resizeShortSide, type PreprocessOptions, type Resized } from './preprocess.js';
import { INTERPOLATIONS } from './resize.js';
import type { AugDraw, Dataset, Example, WorkerSpec } from './types.js';

export interface ImageRecord {
  /** File to read. */
  path: string;
  /** Name reported in examples and errors (relative to the dataset root). */
  relpath: string;
  class_label?: number;
  caption?: string;
  human_label?: string;
}

export interface ImageFilesOptions extends PreprocessOptions {
  /**
   * Keep each image decoded and resized in memory after its first use (crop and flip still vary): for
   * small sets whose decoding would dominate (the emoji set: 3,786 × 64·64·3 bytes = 46 MB per process).
   */
  cache?: boolean;
  classNames?: string[];
  numClasses?: number;
}

export function checkPreprocess(o: PreprocessOptions, what: string): void {
  if (!Number.isInteger(o.size) || o.size < 0) throw new RangeError(`${what}: size must be a positive integer, got ${o.size}`);
  if (o.flipP !== undefined && !(o.flipP >= 0 && o.flipP <= 1)) throw new RangeError(`${what}: flip probability must be in [0, 1], got ${o.flipP}`);
  if (o.interpolation !== undefined && !INTERPOLATIONS.includes(o.interpolation)) {
    throw new RangeError(`${what}: interpolation must be one of ${INTERPOLATIONS.join(', ')}, got ${JSON.stringify(o.interpolation)}`);
  }
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3) throw new RangeError(`${what}: channels must be 1 or 3, got ${o.channels}`);
  const bg = o.background;
  if (bg !== undefined && !(Array.isArray(bg) && bg.length === 3 && bg.every((v) => Number.isInteger(v) && v >= 0 && v <= 255))) {
    throw new RangeError(`${what}: background must be [r, g, b] with integers in 0..255, got ${JSON.stringify(bg)}`);
  }
}

export class ImageFiles implements Dataset {
  readonly channels: number;
  readonly size: number;
  readonly numClasses?: number;
  readonly classNames?: string[];
  /** Whether an augmentation draw changes an example (random crop or flips). */
  readonly augments: boolean;
  private readonly cache: (Resized | undefined)[] | null;

  constructor(readonly records: ImageRecord[], readonly options: ImageFilesOptions) {
    checkPreprocess(options, 'image dataset');
    if (options.size === 0) throw new RangeError('image dataset: size must be given (the crop size)');
    this.channels = options.channels ?? 3;
    this.size = options.size;
    if (options.numClasses !== undefined) this.numClasses = options.numClasses;
    if (options.classNames !== undefined) this.classNames = options.classNames;
    this.augments = (options.randomCrop ?? false) || (options.flipP ?? 0) > 0;
    this.cache = options.cache ? new Array(records.length) : null;
  }

  get length(): number {
    return this.records.length;
  }

  get(i: number, aug?: AugDraw): Example {
    const r = this.records[i];
    if (!Number.isInteger(i) || !r) throw new RangeError(`image dataset: index ${i} out of range [0, ${this.records.length})`);
    let resized = this.cache?.[i];
    if (!resized) {
      resized = resizeShortSide(readImage(r.path), this.options, r.path);
      if (this.cache) this.cache[i] = resized;
    }
    const image = cropFlip(resized, this.options, aug);
    const ex: Example = { image, relpath: r.relpath };
    if (r.class_label !== undefined) ex.class_label = r.class_label;
    if (r.caption !== undefined) ex.caption = r.caption;
    if (r.human_label !== undefined) ex.human_label = r.human_label;
    return ex;
  }

  workerSpec(): WorkerSpec {
    return { module: import.meta.url, factory: 'imageFilesFromSpec', args: { records: this.records, options: this.options } };
  }
}

export function imageFilesFromSpec(a: { records: ImageRecord[]; options: ImageFilesOptions }): Dataset {
  return new ImageFiles(a.records, a.options);
}
