// `ldm worker`: takes jobs for its model from the BullMQ queue on Redis and runs them in its generation
// thread, so the event loop stays free to renew the job lock (a worker that dies stops renewing it, and
// after lockDuration BullMQ's stalled-job check of another worker puts the job back on the queue).
// Results are written once per job id (SET NX); a retried job whose result is already there is not run
// again.

import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { connectionOptions, fromWire, HEARTBEAT_MS, keys, RESULT_TTL_S, type StoredResult, type WireJob, type WireProgress } from './redis.js';
import { ModelRunner, type ModelSpec } from './runner.js';

export interface FleetWorkerOptions {
  url: string;
  prefix?: string;
  spec: ModelSpec;
  /** BullMQ lock duration and stalled-job check interval (ms), and how often a job may stall. */
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
  id?: string;
  log?: (s: string) => void;
}

export interface FleetWorker {
  id: string;
  model: string;
  close(): Promise<void>;
}

export async function startFleetWorker(o: FleetWorkerOptions): Promise<FleetWorker> {
  const log = o.log ?? (() => {});
  const id = o.id ?? `${hostname()}-${process.pid}`;
  const k = keys(o.prefix ?? 'ldm');
  const conn = connectionOptions(o.url);
  const redis = new Redis(conn as RedisOptions);
  const sub = new Redis(conn as RedisOptions);
  const runner = await ModelRunner.start(o.spec, log);
  const info = runner.info;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(info.name)) throw new Error(`model name ${info.name} cannot name a queue (letters, digits, . _ - only); give --name`);

  const beat = () => redis.hset(k.models, info.name, JSON.stringify({ info, seen: Date.now() }));
  await beat();
  const heartbeat = setInterval(() => void beat().catch(() => {}), HEARTBEAT_MS);

  await sub.subscribe(k.cancel);
  sub.on('message', (_ch: string, jobId: string) => {
    if (runner.cancel(jobId)) log(`cancel ${jobId}`);
  });

  const processor = async (job: BullJob<WireJob>) => {
    const jobId = job.id!;
    if (await redis.exists(k.cancelled(jobId))) throw new UnrecoverableError('cancelled');
    if (await redis.exists(k.result(jobId))) {
      log(`done ${jobId} attempt ${job.attemptsMade + 1} recorded 0 (result already in Redis)`);
      return { worker: id, recorded: false };
    }
    const t0 = Date.now();
    let chain: Promise<unknown> = Promise.resolve();
    const outcome = await runner.run(jobId, fromWire(job.data), (p) => {
      const secs = (Date.now() - t0) / 1000;
      const data: WireProgress = { step: p.step + 1, total: p.total, its: secs > 0 ? Number(((p.step + 1) / secs).toFixed(3)) : 0, worker: id, ...(p.preview ? { preview: p.preview.toString('base64') } : {}) };
      chain = chain.then(() => job.updateProgress(data as unknown as object)).catch(() => {});
    });
    await chain;
    if (outcome.status === 'cancelled') {
      log(`cancelled ${jobId}`);
      throw new UnrecoverableError('cancelled');
    }
    const result: StoredResult = { images: outcome.images.map((b) => b.toString('base64')), params: outcome.params, worker: id, attempt: job.attemptsMade + 1 };
    const recorded = (await redis.set(k.result(jobId), JSON.stringify(result), 'EX', RESULT_TTL_S, 'NX')) === 'OK';
    log(`done ${jobId} attempt ${job.attemptsMade + 1} recorded ${recorded ? 1 : 0}`);
    return { worker: id, recorded };
  };

  const worker = new Worker<WireJob>(k.queue(info.name), processor, {
    connection: conn, concurrency: 1,
    lockDuration: o.lockDuration ?? 30_000, stalledInterval: o.stalledInterval ?? 30_000, maxStalledCount: o.maxStalledCount ?? 1,
  });
  worker.on('error', (e) => log(`worker error: ${e.message}`));
  await worker.waitUntilReady();
  log(`worker ${id}: serving model ${info.name} from queue ${k.queue(info.name)}`);
  return {
    id, model: info.name,
    async close() {
      clearInterval(heartbeat);
      await worker.close();
      await runner.close();
      sub.disconnect();
      redis.disconnect();
    },
  };
}
