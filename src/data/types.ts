// What a training set is to the trainers: an indexable list of examples (an image in [-1, 1] plus optional
// class label / caption), and the random draws of its augmentation, which the loader derives from
// (seed, epoch, index) so that they never depend on timing, prefetching or worker scheduling.

/** One example, as the reference's datasets return it (`example["image"]`, `class_label`, `caption`, ...). */
export interface Example {
  /** [C, H, W] float32 in [-1, 1] (x/127.5 − 1). */
  image: Float32Array;
  class_label?: number;
  caption?: string;
  human_label?: string;
  /** Path relative to the dataset root (image folders), or a stable name (packaged sets). */
  relpath?: string;
}

/**
 * The random numbers one example's augmentation may use, each uniform in [0, 1). A dataset uses what its
 * preprocessing needs: `cropY`/`cropX` place a random crop (offset = ⌊(extent − size + 1)·u⌋),
 * `flip` flips horizontally when below the dataset's flip probability.
 */
export interface AugDraw {
  cropY: number;
  cropX: number;
  flip: number;
}

export interface Dataset {
  readonly length: number;
  /** Channels of `image` (1 or 3). */
  readonly channels: number;
  /** Height = width of `image`. */
  readonly size: number;
  readonly numClasses?: number;
  readonly classNames?: string[];
  /** Whether `get(i, aug)` depends on `aug` (random crop or flips configured). Absent = no. */
  readonly augments?: boolean;
  /** The i-th example; `aug` undefined means no augmentation (center crop, no flip). */
  get(i: number, aug?: AugDraw): Example;
  /** A JSON description a worker thread rebuilds the dataset from (datasets that decode files have one). */
  workerSpec?(): WorkerSpec;
}

/** How a worker rebuilds a dataset: `import(module)[factory](args)`. */
export interface WorkerSpec {
  module: string;
  factory: string;
  args: unknown;
}

/** Where a loader stands: the next batch it hands out is batch `position / batchSize` of epoch `epoch`. */
export interface LoaderState {
  /** Epochs completed. */
  epoch: number;
  /** Examples of this epoch's order already handed out. */
  position: number;
  seed: number;
  /** The options the order depends on, checked on restore. */
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  augment: boolean;
  length: number;
}
