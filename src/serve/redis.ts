// Fleets on Redis (BullMQ). `ldm serve --redis` puts jobs on one BullMQ queue per model and follows them
// through QueueEvents; `ldm worker` processes (fleet-worker.ts) take them, run them in their generation
// thread and write the result (PNG bytes as base64 + parameters) under one key per job with SET NX, so
// a job retried after its worker died is recorded once however often it runs. No disk is shared: the
// server copies the results into its output folder when the job completes.
//
// Keys (prefix P, default "ldm"): queue "P-<model>" (BullMQ's own keys), P:models (hash: model name →
// ModelInfo + last heartbeat), P:result:<job id> (the result JSON), P:cancel (pub/sub channel of job
// ids to stop), P:cancelled:<job id> (a job cancelled before a worker saw it).

import { Job as BullJob, Queue, QueueEvents, type ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { Job, type Backend } from './jobs.js';
import type { ModelInfo } from './model-info.js';
import type { JobSpec } from './request.js';
import type { ResultStore } from './store.js';

export const RESULT_TTL_S = 24 * 3600;
/** A model is listed while one of its workers has sent a heartbeat within this time. */
export const MODEL_TTL_MS = 30_000;
export const HEARTBEAT_MS = 5_000;

export const keys = (prefix: string) => ({
  queue: (model: string) => `${prefix}-${model}`,
  models: `${prefix}:models`,
  result: (id: string) => `${prefix}:result:${id}`,
  cancel: `${prefix}:cancel`,
  cancelled: (id: string) => `${prefix}:cancelled:${id}`,
});

/** BullMQ connection options from redis://[user:pass@]host:port[/db]. */
export function connectionOptions(url: string): ConnectionOptions & { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--redis: ${url} is not a URL (redis://host:port)`);
  }
  if (u.protocol !== 'redis:') throw new Error(`--redis: ${url} must start with redis://`);
  return {
    host: u.hostname || '127.0.0.1', port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    maxRetriesPerRequest: null,
  };
}

/** What travels in a BullMQ job: the spec with its images as base64. */
export interface WireJob {
  spec: Omit<JobSpec, 'init' | 'mask'> & { init?: string; mask?: string };
}

export function toWire(spec: JobSpec): WireJob {
  const { init, mask, ...rest } = spec;
  return { spec: { ...rest, ...(init ? { init: Buffer.from(init).toString('base64') } : {}), ...(mask ? { mask: Buffer.from(mask).toString('base64') } : {}) } };
}

export function fromWire(w: WireJob): JobSpec {
  const { init, mask, ...rest } = w.spec;
  return { ...rest, ...(init ? { init: Buffer.from(init, 'base64') } : {}), ...(mask ? { mask: Buffer.from(mask, 'base64') } : {}) };
}

export interface StoredResult {
  images: string[];
  params: Record<string, unknown>;
  worker: string;
  attempt: number;
}

/** Progress a worker reports (BullMQ job progress). */
export interface WireProgress {
  step: number;
  total: number;
  its: number;
  worker: string;
  preview?: string;
}

interface ModelQueue {
  queue: Queue;
  events: QueueEvents;
  refresh: NodeJS.Timeout | null;
}

export class RedisBackend implements Backend {
  private readonly queues = new Map<string, ModelQueue>();
  private readonly jobs = new Map<string, Job>();
  private readonly k: ReturnType<typeof keys>;

  private constructor(private readonly redis: Redis, private readonly conn: ConnectionOptions, prefix: string, private readonly store: ResultStore, private readonly log: (s: string) => void) {
    this.k = keys(prefix);
  }

  static async connect(o: { url: string; prefix?: string; store: ResultStore; log?: (s: string) => void }): Promise<RedisBackend> {
    const conn = connectionOptions(o.url);
    const redis = new Redis({ ...(conn as RedisOptions), lazyConnect: true, maxRetriesPerRequest: 3 });
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      redis.disconnect();
      throw new Error(`cannot reach Redis at ${o.url}: ${(e as Error).message}`);
    }
    return new RedisBackend(redis, conn, o.prefix ?? 'ldm', o.store, o.log ?? (() => {}));
  }

  async models(): Promise<ModelInfo[]> {
    const all = await this.redis.hgetall(this.k.models);
    const now = Date.now();
    return Object.values(all).map((s) => JSON.parse(s) as { info: ModelInfo; seen: number }).filter((m) => now - m.seen < MODEL_TTL_MS).map((m) => m.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  async waiting(model: string): Promise<number> {
    return this.modelQueue(model).queue.getWaitingCount();
  }

  async submit(job: Job): Promise<void> {
    const mq = this.modelQueue(job.model);
    this.jobs.set(job.id, job);
    await mq.queue.add('generate', toWire(job.spec), { jobId: job.id, attempts: 1, removeOnComplete: { age: RESULT_TTL_S }, removeOnFail: { age: RESULT_TTL_S } });
    await this.refreshPositions(job.model);
  }

  async cancel(job: Job): Promise<void> {
    const mq = this.modelQueue(job.model);
    await this.redis.set(this.k.cancelled(job.id), '1', 'EX', RESULT_TTL_S);
    const bj = await BullJob.fromId(mq.queue, job.id);
    if (bj && (await bj.isWaiting())) {
      try {
        await bj.remove();
        job.finish('cancelled');
        this.jobs.delete(job.id);
        this.scheduleRefresh(job.model);
        return;
      } catch {
        // taken by a worker in the meantime: stop it there
      }
    }
    await this.redis.publish(this.k.cancel, job.id);
  }

  async close(): Promise<void> {
    for (const mq of this.queues.values()) {
      if (mq.refresh) clearTimeout(mq.refresh);
      await mq.events.close();
      await mq.queue.close();
    }
    this.redis.disconnect();
  }

  private modelQueue(model: string): ModelQueue {
    let mq = this.queues.get(model);
    if (mq) return mq;
    const name = this.k.queue(model);
    const queue = new Queue(name, { connection: this.conn });
    const events = new QueueEvents(name, { connection: this.conn });
    mq = { queue, events, refresh: null };
    this.queues.set(model, mq);
    const mine = (id: string) => this.jobs.get(id);
    events.on('active', ({ jobId }) => {
      mine(jobId)?.markRunning();
      this.scheduleRefresh(model);
    });
    events.on('progress', ({ jobId, data }) => {
      const j = mine(jobId);
      if (!j || typeof data !== 'object') return;
      const p = data as unknown as WireProgress;
      if (j.status === 'queued') j.markRunning(p.worker);
      j.worker = p.worker;
      j.markProgress(p.step - 1, p.total, p.preview ? Buffer.from(p.preview, 'base64') : undefined, p.its);
    });
    events.on('stalled', ({ jobId }) => {
      const j = mine(jobId);
      if (j) {
        this.log(`job ${jobId}: its worker ${j.worker ?? '?'} stopped answering; it goes back to the queue`);
        j.requeue();
      }
      this.scheduleRefresh(model);
    });
    events.on('waiting', () => this.scheduleRefresh(model));
    events.on('completed', ({ jobId }) => void this.complete(jobId).finally(() => this.scheduleRefresh(model)));
    events.on('failed', ({ jobId, failedReason }) => {
      const j = mine(jobId);
      if (j) {
        if (failedReason === 'cancelled') j.finish('cancelled');
        else j.finish('failed', { error: failedReason });
        this.jobs.delete(jobId);
      }
      this.scheduleRefresh(model);
    });
    return mq;
  }

  private async complete(id: string): Promise<void> {
    const j = this.jobs.get(id);
    if (!j) return;
    try {
      const raw = await this.redis.get(this.k.result(id));
      if (!raw) throw new Error(`job ${id} completed but its result (${this.k.result(id)}) is not in Redis`);
      const r = JSON.parse(raw) as StoredResult;
      const images = r.images.map((b) => Buffer.from(b, 'base64'));
      this.store.save(id, images, { id, params: r.params, worker: r.worker, attempt: r.attempt });
      j.worker = r.worker;
      j.finish('done', { images: images.length, params: r.params });
    } catch (e) {
      j.finish('failed', { error: (e as Error).message });
    }
    this.jobs.delete(id);
  }

  private scheduleRefresh(model: string): void {
    const mq = this.queues.get(model);
    if (!mq || mq.refresh) return;
    mq.refresh = setTimeout(() => {
      mq.refresh = null;
      void this.refreshPositions(model).catch((e: Error) => this.log(`queue positions of ${model}: ${e.message}`));
    }, 20);
  }

  /** Positions from the wait list, oldest first (1 = next). */
  private async refreshPositions(model: string): Promise<void> {
    const ids = await this.modelQueue(model).queue.getRanges(['wait'], 0, -1, true);
    ids.forEach((id, i) => {
      const j = this.jobs.get(id);
      if (j && j.status === 'queued') j.setPosition(i + 1);
    });
  }
}
