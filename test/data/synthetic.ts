// A small in-memory dataset whose examples encode (index, augmentation draw), with a WorkerSpec so that the
// loader's worker pool can rebuild it: the loader tests check exact batch contents against it.
import type { AugDraw, Dataset, Example, WorkerSpec } from '../../src/data/types.js';

export class Synthetic implements Dataset {
  readonly channels = 1;
  readonly size = 2;
  readonly numClasses = 3;
  constructor(readonly length: number, readonly failAt = -1) {}
  get(i: number, aug?: AugDraw): Example {
    if (i === this.failAt) throw new Error(`synthetic: cannot read example ${i}`);
    const a = aug ? aug.cropX : -1;
    return { image: new Float32Array([i, a, aug ? aug.flip : -1, 0]), class_label: i % 3, caption: `c${i}` };
  }
  workerSpec(): WorkerSpec {
    return { module: import.meta.url, factory: 'syntheticFromSpec', args: { length: this.length, failAt: this.failAt } };
  }
}

export function syntheticFromSpec(a: { length: number; failAt: number }): Dataset {
  return new Synthetic(a.length, a.failAt);
}

/** The same examples without a WorkerSpec (assembled on the main thread). */
export class SyntheticInMemory extends Synthetic {
  override workerSpec = undefined as unknown as () => WorkerSpec;
}
