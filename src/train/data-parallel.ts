// Data-parallel training over a process group (the scheme of PyTorch's DistributedDataParallel):
//   - every rank starts from rank 0's parameters and buffers (broadcast once);
//   - each rank computes the gradient of its shard of the global batch;
//   - gradients are averaged across ranks in buckets of about `bucketMB`, each bucket's all-reduce started
//     as soon as backward has finished all of its gradients (reverse parameter order, the order backward
//     completes them in), so communication overlaps the rest of the backward pass;
//   - then every rank takes the same optimizer step, so the replicas stay identical.
// With per-rank batch B on N ranks the averaged gradient is the gradient of the mean loss over the N·B
// samples, i.e. what one process computes with batch N·B (up to float32 summation order).

import * as T from '../engine/index.js';
import type { Module } from '../nn/index.js';
import type { ProcessGroup } from './mpi.js';

/** Make every rank hold rank 0's parameters and persistent buffers. */
export function broadcastModule(m: Module, pg: ProcessGroup): void {
  if (pg.size === 1) return;
  for (const [name, t] of [...m.namedParameters(), ...m.namedBuffers()]) {
    if (!t.isContiguous()) throw new Error(`broadcastModule: ${name} [${t.shape}] is not contiguous`);
    pg.broadcast(t.data as ArrayBufferView, 0);
  }
}

interface Bucket {
  params: T.Tensor[];
  offsets: number[];
  flat: Float32Array;
  ready: number;
  handle: number | null;
}

export interface GradientReducerStats {
  /** Seconds spent waiting for all-reduces after backward returned (communication not hidden). */
  waitSeconds: number;
  /** Seconds inside the non-blocking all-reduce calls and their progress polls during backward. */
  issueSeconds: number;
  buckets: number;
  elements: number;
}

/** Averages the gradients of `params` across ranks, bucket by bucket, overlapped with backward. */
export class GradientReducer {
  private readonly buckets: Bucket[] = [];
  private readonly where = new Map<T.Tensor, Bucket>();
  readonly stats: GradientReducerStats = { waitSeconds: 0, issueSeconds: 0, buckets: 0, elements: 0 };

  constructor(params: T.Tensor[], private readonly pg: ProcessGroup, bucketMB = 25) {
    const limit = Math.max(1, Math.floor((bucketMB * 2 ** 20) / 4));
    let cur: T.Tensor[] = [];
    let n = 0;
    const close = () => {
      if (!cur.length) return;
      const offsets: number[] = [];
      let o = 0;
      for (const p of cur) {
        offsets.push(o);
        o += p.size;
      }
      const b: Bucket = { params: cur, offsets, flat: new Float32Array(o), ready: 0, handle: null };
      this.buckets.push(b);
      for (const p of cur) this.where.set(p, b);
      cur = [];
      n = 0;
    };
    // Backward finishes the last layers first: bucket in reverse so the first bucket fills first.
    for (const p of [...params].reverse()) {
      if (p.dtype !== 'float32') throw new Error(`GradientReducer: parameter [${p.shape}] is ${p.dtype}; data-parallel training reduces float32 gradients`);
      cur.push(p);
      n += p.size;
      if (n >= limit) close();
    }
    close();
    this.stats.buckets = this.buckets.length;
    this.stats.elements = params.reduce((s, p) => s + p.size, 0);
  }

  /**
   * Run one backward pass (the function calls loss.backward()) and leave the rank-averaged gradient in
   * every parameter's .grad. Parameters that got no gradient on this rank count as zero.
   */
  backward(run: () => void): void {
    if (this.pg.size === 1) {
      run();
      return;
    }
    for (const b of this.buckets) {
      b.ready = 0;
      b.handle = null;
    }
    T.withGradReadyHook((leaf) => {
      const b = this.where.get(leaf);
      if (!b) return;
      b.ready++;
      if (b.ready === b.params.length) this.start(b);
      else this.poll();
    }, run);
    const t0 = performance.now();
    for (const b of this.buckets) {
      if (b.handle === null) this.start(b); // some of its parameters got no gradient in this pass
      this.pg.wait(b.handle!);
      this.unpack(b);
    }
    this.stats.waitSeconds += (performance.now() - t0) / 1000;
  }

  private start(b: Bucket): void {
    const t0 = performance.now();
    b.params.forEach((p, i) => {
      const o = b.offsets[i];
      if (p.grad) b.flat.set(T.contiguousData(p.grad) as Float32Array, o);
      else b.flat.fill(0, o, o + p.size);
    });
    b.handle = this.pg.iallreduce(b.flat, 'mean');
    this.stats.issueSeconds += (performance.now() - t0) / 1000;
  }

  /** Let in-flight reductions progress (Open MPI advances non-blocking collectives inside MPI calls). */
  private poll(): void {
    for (const b of this.buckets) if (b.handle !== null) this.pg.test(b.handle);
  }

  private unpack(b: Bucket): void {
    b.params.forEach((p, i) => {
      const o = b.offsets[i];
      p.grad?.dispose();
      p.grad = T.keep(T.Tensor.fromData(b.flat.slice(o, o + p.size), p.shape));
    });
  }
}

/** Sum (then divide by the rank count when `mean`) a few scalars across ranks, e.g. logged losses. */
export function allreduceScalars(values: number[], pg: ProcessGroup, mean = true): number[] {
  if (pg.size === 1) return values;
  const buf = Float64Array.from(values);
  pg.allreduce(buf, mean ? 'mean' : 'sum');
  return Array.from(buf);
}

/**
 * This rank's view of a global batch: rows [rank·B, (rank+1)·B). The loader assembles only these rows
 * (`loaderShard`); random draws are made for the whole global batch on every rank (same seed, same stream)
 * and then sliced, so the union of the ranks' shards — data and noise alike — is exactly what one process
 * with the global batch sees.
 */
export class Shard {
  constructor(readonly pg: ProcessGroup) {}

  get isMain(): boolean {
    return this.pg.rank === 0;
  }

  /** The DataLoader option that makes it assemble this rank's rows only. */
  get loaderShard(): { rank: number; size: number } {
    return { rank: this.pg.rank, size: this.pg.size };
  }

  /** A draw for the global batch whose local rows have shape `local` (`draw` gets the global shape), sliced. */
  draw(local: readonly number[], draw: (globalShape: number[]) => T.Tensor): T.Tensor {
    if (this.pg.size === 1) return draw([...local]);
    return T.tidy(() => this.rows(draw([local[0] * this.pg.size, ...local.slice(1)])));
  }

  /** `draw()` called once per example of the global batch of `localCount` rows per rank; this rank's values. */
  drawEach<V>(localCount: number, draw: () => V): V[] {
    const all = Array.from({ length: localCount * this.pg.size }, draw);
    return all.slice(this.pg.rank * localCount, (this.pg.rank + 1) * localCount);
  }

  /** Element-wise sums of a few numbers over the ranks (float64). */
  sum(values: number[]): number[] {
    return allreduceScalars(values, this.pg, false);
  }

  /** This rank's rows of a tensor whose first axis is the global batch (no copy when single-process). */
  rows(t: T.Tensor): T.Tensor {
    if (this.pg.size === 1) return t;
    const n = t.shape[0];
    if (n % this.pg.size !== 0) throw new Error(`data-parallel: a global batch of ${n} does not split over ${this.pg.size} ranks`);
    const b = n / this.pg.size;
    return T.contiguous(T.slice(t, 0, this.pg.rank * b, (this.pg.rank + 1) * b));
  }

  /** The mean of each logged value over the ranks (every rank passes the same keys). */
  meanLogs(logs: Record<string, number>): Record<string, number> {
    if (this.pg.size === 1) return logs;
    const keys = Object.keys(logs).sort();
    const v = allreduceScalars(keys.map((k) => logs[k]), this.pg);
    return Object.fromEntries(keys.map((k, i) => [k, v[i]]));
  }

  /** Whether any rank wants to stop (e.g. one got the SIGINT first): all ranks stop at the same step. */
  anyStops(stop: boolean): boolean {
    if (this.pg.size === 1) return stop;
    return allreduceScalars([stop ? 1 : 0], this.pg, false)[0] > 0;
  }
}
