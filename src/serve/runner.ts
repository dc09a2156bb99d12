// ModelRunner: one loaded model in its own generation thread (thread.ts), running one job at a time.
// The main thread posts a job and receives progress (with x̂₀ previews) and the PNGs; cancel() sets the
// shared flag the thread's step callback reads.

import { Worker } from 'node:worker_threads';
import type { ModelInfo } from './model-info.js';
import type { JobSpec } from './request.js';

export interface ModelSpec {
  /** A model folder, a weights file, or an embedded model's name; omitted: the default embedded model. */
  source?: string;
  /** The config.yaml when it is not in the folder / beside the weights. */
  config?: string;
  /** The name the API shows (default: the embedded name, else the folder or file name). */
  name?: string;
  ema?: boolean | 'auto';
  /** bert-base-uncased vocab.txt for text models. */
  vocab?: string;
  /** One class name per line. */
  classNames?: string;
}

export interface ThreadInit extends ModelSpec {
  cancelFlag: SharedArrayBuffer;
}

export type ThreadRequest = { type: 'run'; id: string; spec: JobSpec };
export type ThreadMessage =
  | { type: 'log'; message: string }
  | { type: 'ready'; info: ModelInfo; loadMs: number; parameters: number }
  | { type: 'failed'; message: string }
  | { type: 'progress'; id: string; step: number; total: number; preview?: Uint8Array }
  | { type: 'result'; id: string; images: Uint8Array[]; params: Record<string, unknown> }
  | { type: 'cancelled'; id: string }
  | { type: 'error'; id: string; message: string };

export type RunOutcome = { status: 'done'; images: Buffer[]; params: Record<string, unknown> } | { status: 'cancelled' };

export interface Progress {
  step: number;
  total: number;
  preview?: Buffer;
}

interface Pending {
  id: string;
  onProgress: (p: Progress) => void;
  resolve: (r: RunOutcome) => void;
  reject: (e: Error) => void;
}

export class ModelRunner {
  private pending: Pending | null = null;
  private dead: Error | null = null;
  private constructor(private readonly worker: Worker, private readonly flag: Int32Array, readonly info: ModelInfo, readonly loadMs: number) {
    worker.on('message', (m: ThreadMessage) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the generation thread of ${info.name} exited (code ${code})`)));
  }

  /** Start a thread and load the model in it; resolves when it is ready. */
  static start(spec: ModelSpec, log: (s: string) => void = () => {}): Promise<ModelRunner> {
    const flagBuf = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('./thread-entry.mjs', import.meta.url), { workerData: { ...spec, cancelFlag: flagBuf } satisfies ThreadInit });
    return new Promise((resolve, reject) => {
      const onMsg = (m: ThreadMessage) => {
        if (m.type === 'log') log(`${spec.name ?? spec.source ?? 'model'}: ${m.message}`);
        else if (m.type === 'ready') {
          worker.off('message', onMsg);
          worker.off('error', reject);
          resolve(new ModelRunner(worker, new Int32Array(flagBuf), m.info, m.loadMs));
        } else if (m.type === 'failed') {
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      worker.on('message', onMsg);
      worker.on('error', reject);
    });
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  run(id: string, spec: JobSpec, onProgress: (p: Progress) => void): Promise<RunOutcome> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.pending) return Promise.reject(new Error(`model ${this.info.name} is busy with job ${this.pending.id}`));
    return new Promise((resolve, reject) => {
      this.pending = { id, onProgress, resolve, reject };
      const transfer: ArrayBuffer[] = [];
      this.worker.postMessage({ type: 'run', id, spec } satisfies ThreadRequest, transfer);
    });
  }

  /** Stop the running job (if it is `id`) after its current step. */
  cancel(id: string): boolean {
    if (this.pending?.id !== id) return false;
    Atomics.store(this.flag, 0, 1);
    return true;
  }

  async close(): Promise<void> {
    this.dead = new Error(`model ${this.info.name} was closed`);
    await this.worker.terminate();
  }

  private onMessage(m: ThreadMessage): void {
    const p = this.pending;
    if (m.type === 'log' || !p || !('id' in m) || m.id !== p.id) return;
    if (m.type === 'progress') {
      p.onProgress({ step: m.step, total: m.total, preview: m.preview ? Buffer.from(m.preview) : undefined });
      return;
    }
    this.pending = null;
    if (m.type === 'result') p.resolve({ status: 'done', images: m.images.map((b) => Buffer.from(b)), params: m.params });
    else if (m.type === 'cancelled') p.resolve({ status: 'cancelled' });
    else if (m.type === 'error') p.reject(new Error(m.message));
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    const p = this.pending;
    this.pending = null;
    p?.reject(e);
  }
}
