// Jobs as the server tracks them (status, queue position, progress with it/s, the latest x̂₀ preview)
// and the local backend: per loaded model a FIFO queue in front of its generation thread, one job
// running at a time. Every change is emitted as an event, which GET /api/jobs/:id/events streams.

import { EventEmitter } from 'node:events';
import { publicParams, type JobSpec } from './request.js';
import type { ModelInfo } from './model-info.js';
import type { ModelRunner } from './runner.js';
import type { ResultStore } from './store.js';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export const FINAL: ReadonlySet<JobStatus> = new Set(['done', 'failed', 'cancelled']);

export interface JobEvent {
  type: 'queued' | 'running' | 'progress' | 'done' | 'failed' | 'cancelled';
  data: Record<string, unknown>;
}

export class Job extends EventEmitter {
  status: JobStatus = 'queued';
  /** 1 = next to run; 0 while running; null once finished. */
  position: number | null = null;
  progress: { step: number; total: number; its: number } | null = null;
  preview: Buffer | null = null;
  images = 0;
  resultParams: Record<string, unknown> | null = null;
  error: string | null = null;
  worker: string | null = null;
  readonly createdAt = Date.now();
  startedAt: number | null = null;
  finishedAt: number | null = null;

  constructor(readonly id: string, readonly spec: JobSpec) {
    super();
    this.setMaxListeners(100);
  }

  get model(): string {
    return this.spec.model;
  }

  private emitEvent(type: JobEvent['type'], data: Record<string, unknown>): void {
    this.emit('event', { type, data } satisfies JobEvent);
  }

  setPosition(p: number): void {
    if (this.status !== 'queued' || this.position === p) return;
    this.position = p;
    this.emitEvent('queued', { position: p });
  }

  markRunning(worker?: string): void {
    if (FINAL.has(this.status)) return;
    this.status = 'running';
    this.position = 0;
    this.startedAt = Date.now();
    if (worker) this.worker = worker;
    this.emitEvent('running', { worker: this.worker });
  }

  /** Back to the queue (a fleet job whose worker died: it will be retried). */
  requeue(): void {
    if (this.status !== 'running') return;
    this.status = 'queued';
    this.position = null;
    this.progress = null;
  }

  markProgress(step: number, total: number, preview?: Buffer, its?: number): void {
    if (this.status === 'queued') this.markRunning();
    if (this.status !== 'running') return;
    const secs = (Date.now() - (this.startedAt ?? Date.now())) / 1000;
    this.progress = { step: step + 1, total, its: its ?? (secs > 0 ? Number(((step + 1) / secs).toFixed(3)) : 0) };
    if (preview) this.preview = preview;
    this.emitEvent('progress', { ...this.progress, ...(preview ? { preview: `data:image/png;base64,${preview.toString('base64')}` } : {}) });
  }

  finish(status: 'done' | 'failed' | 'cancelled', o: { images?: number; params?: Record<string, unknown>; error?: string } = {}): void {
    if (FINAL.has(this.status)) return;
    this.status = status;
    this.position = null;
    this.finishedAt = Date.now();
    this.images = o.images ?? 0;
    this.resultParams = o.params ?? null;
    this.error = o.error ?? null;
    this.spec.init = this.spec.mask = undefined; // the uploads are no longer needed
    this.emitEvent(status, status === 'done' ? { images: this.imageUrls(), params: this.resultParams } : status === 'failed' ? { error: this.error } : {});
  }

  imageUrls(): string[] {
    return Array.from({ length: this.images }, (_, i) => `/api/jobs/${this.id}/images/${i}.png`);
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id, model: this.model, status: this.status, position: this.position, progress: this.progress,
      params: publicParams(this.spec), result: this.resultParams, images: this.imageUrls(), error: this.error, worker: this.worker,
      created: new Date(this.createdAt).toISOString(), started: this.startedAt && new Date(this.startedAt).toISOString(), finished: this.finishedAt && new Date(this.finishedAt).toISOString(),
    };
  }
}

/** Where jobs run: in this process (LocalBackend) or on workers behind Redis (RedisBackend). */
export interface Backend {
  models(): Promise<ModelInfo[]>;
  /** Jobs waiting (not running) for a model. */
  waiting(model: string): Promise<number>;
  submit(job: Job): Promise<void>;
  /** Cancel a queued or running job; resolves once it is requested (the job's status follows). */
  cancel(job: Job): Promise<void>;
  close(): Promise<void>;
}

export class LocalBackend implements Backend {
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<string, Job>();

  constructor(private readonly runners: Map<string, ModelRunner>, private readonly store: ResultStore, private readonly log: (s: string) => void = () => {}) {
    for (const name of runners.keys()) this.queues.set(name, []);
  }

  async models(): Promise<ModelInfo[]> {
    return [...this.runners.values()].map((r) => r.info);
  }

  async waiting(model: string): Promise<number> {
    return this.queues.get(model)?.length ?? 0;
  }

  async submit(job: Job): Promise<void> {
    const q = this.queues.get(job.model);
    if (!q) throw new Error(`no model ${job.model}`);
    q.push(job);
    this.renumber(job.model);
    this.pump(job.model);
  }

  async cancel(job: Job): Promise<void> {
    const q = this.queues.get(job.model)!;
    const i = q.indexOf(job);
    if (i >= 0) {
      q.splice(i, 1);
      job.finish('cancelled');
      this.renumber(job.model);
    } else if (this.running.get(job.model) === job) {
      this.runners.get(job.model)!.cancel(job.id);
    }
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) for (const j of q.splice(0)) j.finish('cancelled');
    await Promise.all([...this.runners.values()].map((r) => r.close()));
  }

  private renumber(model: string): void {
    this.queues.get(model)!.forEach((j, i) => j.setPosition(i + 1));
  }

  private pump(model: string): void {
    if (this.running.has(model)) return;
    const job = this.queues.get(model)!.shift();
    if (!job) return;
    this.renumber(model);
    this.running.set(model, job);
    job.markRunning();
    this.runners.get(model)!.run(job.id, job.spec, (p) => job.markProgress(p.step, p.total, p.preview))
      .then((r) => {
        if (r.status === 'cancelled') job.finish('cancelled');
        else {
          this.store.save(job.id, r.images, { id: job.id, params: r.params, spec: publicParams(job.spec) });
          job.finish('done', { images: r.images.length, params: r.params });
        }
      })
      .catch((e: Error) => {
        this.log(`job ${job.id} failed: ${e.message}`);
        job.finish('failed', { error: e.message });
      })
      .finally(() => {
        this.running.delete(model);
        this.pump(model);
      });
  }
}
