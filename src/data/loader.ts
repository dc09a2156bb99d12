// The training data loader: endless batches, epoch after epoch, in an order and with augmentation draws that
// are pure functions of (seed, epoch, index) (src/data/random.ts). Batch k of a run is therefore the same
// whether it was prepared ahead, by which worker, or after a resume from `state()`.
//
// Datasets that decode files (they have a `workerSpec`) are assembled by a pool of worker threads, `prefetch`
// batches ahead, while the training step runs; their buffers come back transferred. In-memory sets (MNIST,
// subsets of it) are assembled on the main thread when asked: copying a batch out of memory costs less than
// a message round trip.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { assembleBatch, type RawBatch } from './assemble.js';
import { toBatch, type Batch } from './collate.js';
import { augDraw, epochOrder } from './random.js';
import type { AugDraw, Dataset, LoaderState, WorkerSpec } from './types.js';

export type { Batch } from './collate.js';

export interface LoaderOptions {
  batchSize: number;
  /** A new random order every epoch (default true). */
  shuffle?: boolean;
  seed: number;
  /** Drop the last, incomplete batch of each epoch (default false, as torch's DataLoader). */
  dropLast?: boolean;
  /**
   * Pass augmentation draws (default true): the dataset's own settings (random crop, flip probability)
   * decide what they change. false gives every example unaugmented (center crop, no flip): for validation.
   */
  augment?: boolean;
  /** Batches prepared ahead by the workers (default 2). */
  prefetch?: number;
  /** Worker threads for datasets that decode files (default: 1 on ≤ 2 cores, else 2; 0 = main thread). */
  workers?: number;
  /**
   * Data-parallel training: `batchSize` is the global batch, and this loader assembles only rows
   * [rank·B/size, (rank+1)·B/size) of each one (B must split evenly: use dropLast). Order, draws and state are
   * those of the global loader, so the ranks' batches together are exactly the single-process batch.
   */
  shard?: { rank: number; size: number };
}

interface Cursor {
  epoch: number;
  position: number;
}

interface Planned {
  indices: Int32Array;
  raw: Promise<RawBatch> | null;
}

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly augment: boolean;
  readonly prefetch: number;
  readonly shard: { rank: number; size: number };
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;
  private handed: Cursor = { epoch: 0, position: 0 };
  private planned: Cursor = { epoch: 0, position: 0 };
  private queue: Planned[] = [];
  private orders = new Map<number, Int32Array>();
  private pool: WorkerPool | null = null;
  private closed = false;

  constructor(readonly dataset: Dataset, o: LoaderOptions) {
    const n = dataset.length;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${o.batchSize}`);
    if (!Number.isInteger(o.seed) || o.seed < 0) throw new RangeError(`DataLoader: seed must be a non-negative integer, got ${o.seed}`);
    if (n < 1) throw new RangeError('DataLoader: the dataset is empty');
    this.batchSize = o.batchSize;
    this.shuffle = o.shuffle ?? true;
    this.seed = o.seed;
    this.dropLast = o.dropLast ?? false;
    this.augment = o.augment ?? true;
    this.prefetch = o.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new RangeError(`DataLoader: prefetch must be a non-negative integer, got ${o.prefetch}`);
    if (this.dropLast && n < this.batchSize) {
      throw new RangeError(`DataLoader: the dataset has ${n} examples, fewer than one batch of ${this.batchSize} (dropLast: true gives no batch at all)`);
    }
    this.shard = o.shard ?? { rank: 0, size: 1 };
    const { rank, size } = this.shard;
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`DataLoader: shard must be { rank, size } with 0 ≤ rank < size, got ${JSON.stringify(o.shard)}`);
    if (size > 1 && (!this.dropLast || this.batchSize % size !== 0)) {
      throw new RangeError(`DataLoader: a sharded loader needs dropLast: true and a batchSize that splits over ${size} ranks (got batchSize ${this.batchSize}${this.dropLast ? '' : ', dropLast false'})`);
    }
    this.batchesPerEpoch = this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
    const workers = o.workers ?? (availableParallelism() <= 2 ? 1 : 2);
    if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`DataLoader: workers must be a non-negative integer, got ${o.workers}`);
    if (dataset.workerSpec && workers > 0) this.pool = new WorkerPool(dataset.workerSpec(), workers);
  }

  /** The loader over `dataset` positioned where `state` says (see `state()`). */
  static restore(dataset: Dataset, o: LoaderOptions, state: LoaderState): DataLoader {
    const l = new DataLoader(dataset, { ...o, seed: state.seed });
    l.restore(state);
    return l;
  }

  /** Where the loader stands: the next batch `next()` returns. JSON-safe. */
  state(): LoaderState {
    return {
      epoch: this.handed.epoch,
      position: this.handed.position,
      seed: this.seed,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
      augment: this.augment,
      length: this.dataset.length,
    };
  }

  /** Continue from `state`: the following batches are those an uninterrupted loader would have given. */
  restore(state: LoaderState): void {
    const mine = this.state();
    for (const k of ['seed', 'batchSize', 'shuffle', 'dropLast', 'augment', 'length'] as const) {
      if (state[k] !== mine[k]) throw new Error(`DataLoader.restore: the saved loader had ${k} = ${JSON.stringify(state[k])}, this one has ${JSON.stringify(mine[k])}: the batches would differ`);
    }
    const end = this.epochEnd();
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.position) || state.position < 0 || state.position >= end || state.position % this.batchSize !== 0) {
      throw new Error(`DataLoader.restore: invalid position epoch ${state.epoch}, example ${state.position} (an epoch hands out ${end} examples in batches of ${this.batchSize})`);
    }
    this.handed = { epoch: state.epoch, position: state.position };
    this.planned = { ...this.handed };
    this.queue = [];
    this.orders.clear();
  }

  /** Epochs completed plus the fraction of the current one (for logs). */
  get epochProgress(): number {
    return this.handed.epoch + this.handed.position / this.epochEnd();
  }

  /** The next batch (endless). */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('DataLoader: next() after close()');
    if (!this.pool) {
      const epoch = this.handed.epoch;
      const { indices } = this.plan(this.handed);
      this.planned = { ...this.handed };
      return toBatch(assembleBatch(this.dataset, indices, this.draws(epoch, indices)), [...indices], this.dataset);
    }
    this.fill();
    const p = this.queue.shift()!;
    this.plan(this.handed); // advances `handed` past p
    this.fill();
    return toBatch(await p.raw!, [...p.indices], this.dataset);
  }

  /** Stops the workers. Batches still being prepared are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    if (this.pool) await this.pool.close();
    this.pool = null;
  }

  private epochEnd(): number {
    return this.dropLast ? this.batchesPerEpoch * this.batchSize : this.dataset.length;
  }

  private order(epoch: number): Int32Array {
    let o = this.orders.get(epoch);
    if (!o) {
      o = epochOrder(this.dataset.length, this.seed, epoch, this.shuffle);
      this.orders.set(epoch, o);
      for (const e of this.orders.keys()) if (e < this.handed.epoch) this.orders.delete(e);
    }
    return o;
  }

  /** The indices of this shard's rows of the batch at cursor `c`, and `c` moved past the whole batch. */
  private plan(c: Cursor): { indices: Int32Array } {
    const end = this.epochEnd();
    const global = this.order(c.epoch).subarray(c.position, Math.min(c.position + this.batchSize, end));
    c.position += global.length;
    if (c.position >= end) {
      c.epoch++;
      c.position = 0;
    }
    const per = global.length / this.shard.size;
    return { indices: global.slice(this.shard.rank * per, (this.shard.rank + 1) * per) };
  }

  private draws(epoch: number, indices: Int32Array): AugDraw[] | null {
    return this.augment ? Array.from(indices, (i) => augDraw(this.seed, epoch, i)) : null;
  }

  private fill(): void {
    while (this.queue.length < this.prefetch + 1) {
      const epoch = this.planned.epoch;
      const { indices } = this.plan(this.planned);
      const raw = this.pool!.run(indices, this.draws(epoch, indices));
      raw.catch(() => {}); // a dropped batch's failure is not unhandled; next() rethrows it for a used one
      this.queue.push({ indices, raw });
    }
  }
}

/** How long close() waits for a worker to finish its current job before terminating it. */
const CLOSE_GRACE_MS = 5000;

/** Worker threads that assemble batches of one dataset; results come back in the order asked. */
class WorkerPool {
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (r: RawBatch) => void; reject: (e: Error) => void; w: number }>();
  private busy: number[] = [];
  private nextId = 0;
  private failure: Error | null = null;

  constructor(spec: WorkerSpec, n: number) {
    for (let k = 0; k < n; k++) {
      const w = new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: { spec } });
      w.unref();
      w.on('message', (m: { id: number; raw?: RawBatch; error?: string }) => {
        const job = this.pending.get(m.id);
        if (!job) return;
        this.settle(m.id);
        if (m.error !== undefined) job.reject(new Error(m.error));
        else job.resolve(m.raw!);
      });
      w.on('error', (e) => this.fail(new Error(`dataset worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`dataset worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  run(indices: Int32Array, draws: AugDraw[] | null): Promise<RawBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const w = id % this.workers.length;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, w });
      // A worker keeps the process alive only while it has work (a forgotten close() does not hang it).
      if (this.busy[w]++ === 0) this.workers[w].ref();
      this.workers[w].postMessage({ id, indices, draws });
    });
  }

  private settle(id: number): void {
    const w = this.pending.get(id)!.w;
    this.pending.delete(id);
    if (--this.busy[w] === 0) this.workers[w].unref();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [id, job] of [...this.pending]) {
      this.settle(id);
      job.reject(e);
    }
  }

  async close(): Promise<void> {
    this.failure ??= new Error('DataLoader closed');
    const ws = this.workers;
    this.workers = [];
    for (const [id, job] of [...this.pending]) {
      this.pending.delete(id);
      job.reject(this.failure);
    }
    // Each worker is asked to exit after its current job (see worker.ts); one stuck in a job is terminated.
    await Promise.all(ws.map((w) => new Promise<void>((resolve) => {
      const stuck = setTimeout(() => void w.terminate(), CLOSE_GRACE_MS);
      w.once('exit', () => {
        clearTimeout(stuck);
        resolve();
      });
      w.postMessage({ close: true });
    })));
  }
}
