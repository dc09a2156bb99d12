// Fleets: a real redis-server on a loopback port, `ldm serve`'s API in front (jobs queued on BullMQ) and two
// `ldm worker` child processes. 20 jobs all complete, each exactly once; the API reports queue positions in
// submission order; a worker killed (SIGKILL) in the middle of a job: its job goes back to the queue
// after the lock expires and the other worker completes it, and every job is recorded once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_LIMITS } from '../../src/serve/limits.js';
import { RedisBackend } from '../../src/serve/redis.js';
import { buildServer } from '../../src/serve/server.js';
import { ResultStore } from '../../src/serve/store.js';
import { decodeImage, readPngText } from '../../src/io/image.js';
import { freePort, startLdm, tinyModelDir } from './helpers.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const skip = hasRedis ? false : 'redis-server not found (apt-get install redis-server): fleet test skipped';
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-serve-fleet-'));
const PREFIX = 'ldmtest';
let redisProc: ChildProcess, redis: Redis, url: string, app: FastifyInstance, base: string;
const workers: { child: ChildProcess; lines: string[]; pid: number }[] = [];

before(async () => {
  if (skip) return;
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; !(await portOpen(port)); i++) {
    if (i > 100) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  redis = new Redis({ port, host: '127.0.0.1' });
  const model = tinyModelDir('class', tmp);
  const args = ['worker', '--redis', url, '--queue', PREFIX, '--model', model, '--lock-ms', '4000', '--stalled-ms', '1000', '--max-stalled', '3'];
  const started = await Promise.all([0, 1].map(() => startLdm(args, /^worker .*: serving model/)));
  for (const w of started) workers.push({ ...w, pid: w.child.pid! });
  const store = new ResultStore(path.join(tmp, 'out'));
  const backend = await RedisBackend.connect({ url, prefix: PREFIX, store });
  app = await buildServer({ backend, store, limits: { ...DEFAULT_LIMITS, maxQueue: 40 } });
  const p = await freePort();
  await app.listen({ host: '127.0.0.1', port: p });
  base = `http://127.0.0.1:${p}`;
});

after(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => (w.child.exitCode !== null || w.child.signalCode !== null ? r(null) : w.child.once('exit', r)))));
  await app?.close();
  redis?.disconnect();
  redisProc?.kill('SIGTERM');
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

const json = async (p: string, init?: RequestInit) => (await (await fetch(base + p, init)).json()) as Record<string, any>;
const submit = (body: object) => json('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function waitAll(ids: string[], timeoutMs = 240_000): Promise<Record<string, any>[]> {
  const t0 = Date.now();
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => json(`/api/jobs/${id}`)));
    if (jobs.every((j) => ['done', 'failed', 'cancelled'].includes(j.status))) return jobs;
    if (Date.now() - t0 > timeoutMs) throw new Error(`jobs unfinished after ${timeoutMs} ms: ${jobs.filter((j) => j.status !== 'done').map((j) => `${j.id} ${j.status}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** "done <id> attempt k recorded 1" lines of all workers. */
function recorded(): string[] {
  return workers.flatMap((w) => w.lines).map((l) => /^done (\S+) attempt \d+ recorded 1/.exec(l)?.[1]).filter((x): x is string => !!x);
}

test('fleet: 20 jobs on two workers complete exactly once; queue positions follow submission order', { skip }, async () => {
  const models = await json('/api/models');
  assert.deepEqual(models.models.map((m: any) => m.name), ['tiny-class']);
  // Hold the workers (BullMQ pause) while submitting, so that the positions are all observable.
  const q = new Queue(`${PREFIX}-tiny-class`, { connection: { host: '127.0.0.1', port: Number(new URL(url).port) } });
  await q.pause();
  const subs = [];
  for (let i = 0; i < 20; i++) subs.push(await submit({ class: i % 10, steps: 24, seed: 100 + i, width: 8, height: 8, preview: false }));
  const ids = subs.map((s) => s.id as string);
  assert.ok(ids.every((id) => /^[0-9a-f-]{36}$/.test(id)), JSON.stringify(subs[0]));
  assert.deepEqual(subs.map((s) => s.position), Array.from({ length: 20 }, (_, i) => i + 1), 'POST answers each job\'s place in the queue');
  const snap = await Promise.all(ids.map((id) => json(`/api/jobs/${id}`)));
  assert.deepEqual(snap.map((j) => `${j.status}:${j.position}`), Array.from({ length: 20 }, (_, i) => `queued:${i + 1}`));
  await q.resume();
  await q.close();
  // Once the workers run, the remaining jobs move up.
  const t1 = Date.now();
  for (;;) {
    const js = await Promise.all(ids.map((id) => json(`/api/jobs/${id}`)));
    const waiting = js.filter((j) => j.status === 'queued');
    const pos = waiting.map((j) => j.position);
    if (waiting.length > 0 && waiting.length < 18 && pos.every((p, i) => p === i + 1)) {
      console.log(`# positions after the workers started: ${js.map((j) => (j.status === 'queued' ? j.position : j.status[0])).join(' ')}`);
      break;
    }
    if (Date.now() - t1 > 60_000) throw new Error(`positions never moved up: ${js.map((j) => `${j.status}:${j.position}`).join(' ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  const jobs = await waitAll(ids);
  assert.deepEqual(jobs.map((j) => `${j.status}${j.error ? `: ${j.error}` : ''}`), new Array(20).fill('done'));
  for (const [i, j] of jobs.entries()) {
    assert.equal(j.images.length, 1);
    const png = Buffer.from(await (await fetch(base + j.images[0])).arrayBuffer());
    assert.equal(decodeImage(png).width, 8);
    assert.equal(JSON.parse(readPngText(png).parameters).seed, 100 + i);
  }
  const rec = recorded();
  assert.equal(rec.length, 20, rec.join(' '));
  assert.deepEqual([...rec].sort(), [...ids].sort());
  assert.equal((await redis.keys(`${PREFIX}:result:*`)).length, 20);
  const byWorker = new Set(jobs.map((j) => j.worker));
  assert.equal(byWorker.size, 2, `both workers took jobs: ${[...byWorker]}`);
});

test('fleet: a worker killed mid-job — its job is retried by the other worker; every job completes, recorded once', { skip }, async () => {
  const before = recorded().length;
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await submit({ class: i, steps: 100, seed: 500 + i, width: 8, height: 8, preview: false })).id);
  // Wait until both workers are in the middle of a job, then kill the first one.
  const victim = workers[0];
  let target: string | undefined;
  const t0 = Date.now();
  while (!target) {
    if (Date.now() - t0 > 60_000) throw new Error('no job ran on the first worker');
    const js = await Promise.all(ids.map((id) => json(`/api/jobs/${id}`)));
    target = js.find((j) => j.status === 'running' && j.worker?.endsWith(`-${victim.pid}`) && j.progress?.step >= 1 && j.progress.step < 50)?.id;
    await new Promise((r) => setTimeout(r, 50));
  }
  victim.child.kill('SIGKILL');
  await new Promise((r) => victim.child.once('exit', r));
  const killedAt = Date.now();
  const jobs = await waitAll(ids);
  assert.deepEqual(jobs.map((j) => `${j.status}${j.error ? `: ${j.error}` : ''}`), new Array(6).fill('done'));
  const retried = jobs.find((j) => j.id === target)!;
  assert.ok(retried.worker.endsWith(`-${workers[1].pid}`), `the killed worker's job was completed by the other worker (${retried.worker})`);
  console.log(`# job ${target} killed mid-run on worker ${victim.pid}, completed by ${retried.worker} ${((Date.parse(retried.finished) - killedAt) / 1000).toFixed(1)} s later`);
  const mine = new Set(ids);
  const rec = recorded().filter((id) => mine.has(id));
  assert.deepEqual([...rec].sort(), [...ids].sort(), 'each job recorded exactly once');
  assert.equal(recorded().length, before + 6);
  assert.ok(!victim.lines.some((l) => l.includes(`done ${target}`)));
  assert.equal((await redis.keys(`${PREFIX}:result:*`)).length, 26);
  const stored = JSON.parse((await redis.get(`${PREFIX}:result:${target}`))!);
  assert.equal(stored.attempt >= 1, true);
});
