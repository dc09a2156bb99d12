// The HTTP API and the web page (fastify). Every request is schema-checked; errors are JSON
// {error, message, statusCode}. With a token, every /api route needs `Authorization: Bearer <token>`
// (the page's static files hold no data and stay public so a browser can load it).

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { FINAL, Job, type Backend, type JobEvent } from './jobs.js';
import { HttpError, overLimit, type Limits } from './limits.js';
import { parseMultipart } from './multipart.js';
import { checkJobRequest, JOB_REQUEST_SCHEMA, type JobRequest } from './request.js';
import type { ResultStore } from './store.js';

export interface ServerOptions {
  backend: Backend;
  store: ResultStore;
  limits: Limits;
  token?: string;
  /** Finished jobs kept in memory (oldest forgotten first; their files stay). */
  keepJobs?: number;
  logger?: boolean;
}

const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', pattern: UUID } } } as const;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

function tokenCheck(token: string | undefined) {
  if (!token) return null;
  const want = Buffer.from(`Bearer ${token}`);
  return (header: string | undefined) => {
    const got = Buffer.from(header ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  };
}

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const { backend, store, limits } = o;
  const jobs = new Map<string, Job>();
  const keep = o.keepJobs ?? 1000;
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: limits.maxBodyBytes, ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } } });
  const authorized = tokenCheck(o.token);

  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (req, body, done) => {
    try {
      done(null, parseMultipart(body as Buffer, req.headers['content-type'] ?? ''));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!authorized || !req.url.startsWith('/api/')) return;
    if (!authorized(req.headers.authorization)) {
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(401, 'unauthorized', 'this server needs Authorization: Bearer <token>');
    }
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.code, message: err.message, statusCode: err.statusCode, ...err.extra });
    if (err.validation) return reply.code(400).send({ error: 'bad_request', message: err.message, statusCode: 400 });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'over_limit', message: `the request body is over this server's limit of ${limits.maxBodyBytes} bytes (--max-body)`, statusCode: 413, limit: 'maxBodyBytes', max: limits.maxBodyBytes });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error(err);
    return reply.code(status).send({ error: status === 500 ? 'internal' : 'bad_request', message: err.message, statusCode: status });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}`, statusCode: 404 }));

  const pages = new Map(Object.entries(STATIC).map(([route, s]) => [route, { body: readFileSync(new URL(`./public/${s.file}`, import.meta.url)), type: s.type }]));
  for (const [route, page] of pages) app.get(route, async (_req, reply) => reply.type(page.type).header('cache-control', 'no-cache').send(page.body));

  const job = (req: FastifyRequest): Job => {
    const id = (req.params as { id: string }).id;
    const j = jobs.get(id);
    if (!j) throw new HttpError(404, 'not_found', `no job ${id}`);
    return j;
  };

  const forget = () => {
    if (jobs.size <= keep) return;
    for (const [id, j] of jobs) {
      if (jobs.size <= keep) break;
      if (FINAL.has(j.status)) jobs.delete(id);
    }
  };

  app.get('/api/models', async () => ({ models: await backend.models(), limits }));

  app.post('/api/jobs', { schema: { body: JOB_REQUEST_SCHEMA } }, async (req, reply) => {
    const body = req.body as JobRequest;
    const models = await backend.models();
    if (models.length === 0) throw new HttpError(503, 'no_models', 'no model is available (no worker has registered one yet)');
    const info = body.model === undefined ? models[0] : models.find((m) => m.name === body.model);
    if (!info) throw new HttpError(400, 'bad_request', `unknown model ${body.model}; this server has ${models.map((m) => m.name).join(', ')}`);
    const spec = checkJobRequest(body, info, limits);
    const waiting = await backend.waiting(info.name);
    if (waiting >= limits.maxQueue) throw overLimit('maxQueue', `the queue of model ${info.name} holds ${waiting} jobs; length`, waiting, limits);
    const j = new Job(randomUUID(), spec);
    jobs.set(j.id, j);
    forget();
    await backend.submit(j);
    return reply.code(202).send({ id: j.id, status: j.status, position: j.position });
  });

  app.get('/api/jobs', async () => ({ jobs: [...jobs.values()].reverse().slice(0, 100).map((j) => j.toJSON()) }));
  app.get('/api/jobs/:id', { schema: { params: idParams } }, async (req) => job(req).toJSON());

  app.delete('/api/jobs/:id', { schema: { params: idParams } }, async (req) => {
    const j = job(req);
    if (FINAL.has(j.status)) throw new HttpError(409, 'finished', `job ${j.id} has already ${j.status === 'done' ? 'finished' : j.status === 'failed' ? 'failed' : 'been cancelled'}`);
    await backend.cancel(j);
    return { id: j.id, status: j.status, cancelRequested: true };
  });

  app.get('/api/jobs/:id/images/:file', {
    schema: { params: { type: 'object', required: ['id', 'file'], additionalProperties: false, properties: { id: { type: 'string', pattern: UUID }, file: { type: 'string', pattern: '^(0|[1-9][0-9]{0,3})\\.png$' } } } },
  }, async (req, reply) => {
    const j = job(req);
    const i = Number((req.params as { file: string }).file.slice(0, -4));
    if (j.status !== 'done') throw new HttpError(409, 'not_finished', `job ${j.id} is ${j.status}; its images come when it is done`);
    if (i >= j.images) throw new HttpError(404, 'not_found', `job ${j.id} has ${j.images} image(s): 0…${j.images - 1}`);
    const bytes = store.image(j.id, i);
    if (!bytes) throw new HttpError(404, 'not_found', `image ${i} of job ${j.id} is no longer in the output folder`);
    return reply.type('image/png').header('cache-control', 'private, max-age=31536000, immutable').send(bytes);
  });

  app.get('/api/jobs/:id/events', { schema: { params: idParams } }, (req, reply) => streamEvents(job(req), req, reply));

  app.addHook('onClose', async () => backend.close());
  return app;
}

/** Server-sent events: the job's state first, then every change until it finishes. */
function streamEvents(j: Job, req: FastifyRequest, reply: FastifyReply): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  const send = (type: string, data: unknown) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  const state = j.toJSON();
  if (j.preview && j.status === 'running') state.preview = `data:image/png;base64,${j.preview.toString('base64')}`;
  send('state', state);
  if (FINAL.has(j.status)) {
    res.end();
    return;
  }
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const onEvent = (e: JobEvent) => {
    send(e.type, e.data);
    if (FINAL.has(e.type as never)) close();
  };
  const close = () => {
    clearInterval(heartbeat);
    j.off('event', onEvent);
    res.end();
  };
  j.on('event', onEvent);
  req.raw.on('close', close);
}
