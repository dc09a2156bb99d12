// Subsets and the held-out split. The split is a function of (seed, dataset length) only: a random
// permutation from the seed's split stream, its first k indices held out. Both sides keep the base order
// (sorted indices), so they are disjoint, cover the set, and are the same on every machine and run.

import { STREAM, permutation, streamGenerator } from './random.js';
import type { AugDraw, Dataset, Example, WorkerSpec } from './types.js';

/** The examples of `base` at `indices` (in that order). */
export class Subset implements Dataset {
  readonly channels: number;
  readonly size: number;
  readonly numClasses?: number;
  readonly classNames?: string[];
  readonly augments: boolean;

  constructor(readonly base: Dataset, readonly indices: Int32Array) {
    for (const i of indices) {
      if (i < 0 || i >= base.length) throw new RangeError(`Subset: index ${i} out of range [0, ${base.length})`);
    }
    this.channels = base.channels;
    this.size = base.size;
    if (base.numClasses !== undefined) this.numClasses = base.numClasses;
    if (base.classNames !== undefined) this.classNames = base.classNames;
    this.augments = base.augments ?? false;
    if (base.workerSpec) this.workerSpec = () => ({ module: import.meta.url, factory: 'subsetFromSpec', args: { base: base.workerSpec!(), indices: this.indices } });
  }

  get length(): number {
    return this.indices.length;
  }

  get(i: number, aug?: AugDraw): Example {
    if (!Number.isInteger(i) || i < 0 || i >= this.indices.length) throw new RangeError(`Subset: index ${i} out of range [0, ${this.indices.length})`);
    return this.base.get(this.indices[i], aug);
  }

  workerSpec?: () => WorkerSpec;
}

/** Rebuilds a Subset inside a worker (see src/data/worker.ts). */
export async function subsetFromSpec(args: { base: WorkerSpec; indices: Int32Array }): Promise<Dataset> {
  const { datasetFromSpec } = await import('./worker-spec.js');
  return new Subset(await datasetFromSpec(args.base), args.indices);
}

export interface SplitOptions {
  /** Held-out examples: a count (integer ≥ 1) or a fraction in (0, 1) of the set (rounded). */
  heldOut: number;
  seed: number;
}

/** A deterministic, disjoint train / held-out split of `ds`. */
export function splitDataset(ds: Dataset, o: SplitOptions): { train: Subset; heldOut: Subset } {
  const n = ds.length;
  const h = o.heldOut;
  if (!(h > 0) || (h >= 1 && !Number.isInteger(h))) throw new RangeError(`splitDataset: heldOut must be a count ≥ 1 or a fraction in (0, 1), got ${h}`);
  const k = h < 1 ? Math.round(h * n) : h;
  if (k < 1 || k >= n) throw new RangeError(`splitDataset: cannot hold out ${k} of ${n} examples (need 1 ≤ held out < ${n})`);
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new RangeError(`splitDataset: seed must be a non-negative integer, got ${o.seed}`);
  const perm = permutation(n, streamGenerator(o.seed, STREAM.split, n));
  const held = perm.slice(0, k).sort((a, b) => a - b);
  const train = perm.slice(k).sort((a, b) => a - b);
  return { train: new Subset(ds, train), heldOut: new Subset(ds, held) };
}
