// Starts `ldm serve`'s server in-process (models in their generation threads) for the API and browser tests.
import type { FastifyInstance } from 'fastify';
import { LocalBackend } from '../../src/serve/jobs.js';
import { DEFAULT_LIMITS, type Limits } from '../../src/serve/limits.js';
import { ModelRunner, type ModelSpec } from '../../src/serve/runner.js';
import { buildServer } from '../../src/serve/server.js';
import { ResultStore } from '../../src/serve/store.js';
import { freePort } from './helpers.js';

export interface Running {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startServer(specs: ModelSpec[], out: string, o: { limits?: Partial<Limits>; token?: string } = {}): Promise<Running> {
  const runners = new Map<string, ModelRunner>();
  for (const s of specs) {
    const r = await ModelRunner.start(s);
    runners.set(r.info.name, r);
  }
  const store = new ResultStore(out);
  const app = await buildServer({ backend: new LocalBackend(runners, store), store, limits: { ...DEFAULT_LIMITS, ...o.limits }, token: o.token });
  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}
