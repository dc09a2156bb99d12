// `ldm serve`: the generation server (HTTP API + web page) with its models loaded, or, with --redis,
// a front end that queues jobs for `ldm worker` processes (src/serve/).

import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS, type Limits } from '../serve/limits.js';
import { LocalBackend } from '../serve/jobs.js';
import { RedisBackend } from '../serve/redis.js';
import { ModelRunner, type ModelSpec } from '../serve/runner.js';
import { buildServer } from '../serve/server.js';
import { ResultStore } from '../serve/store.js';

export const SERVE_USAGE = `usage: ldm serve [--model <folder|file|embedded name>]… [options]
  Serves an HTTP API and a web page for generating images; models stay loaded, jobs run one at a time per
  model and the rest wait in a FIFO queue (docs/serve.md).
  models (default: the embedded model):
    --model M            a model folder (config.yaml + weights), a weights file, or an embedded model's name (repeatable)
    --config F --ckpt F  a config.yaml and a checkpoint
    --name N             the name the API shows for a single model    --ema | --no-ema   (default: auto)
    --vocab F            bert-base-uncased vocab.txt for text models   --class-names F   one class name per line
  server:
    --host H (default 127.0.0.1)   --port P (default 7860; 0 = any free port)   --out DIR (default outputs/serve)
    --token T            require Authorization: Bearer T on every /api route (required to bind other than loopback)
    --redis URL          queue jobs on Redis (redis://host:port) for \`ldm worker\` processes instead of running them
    --queue NAME         the BullMQ queue name prefix (default ldm)
  limits (over them: a 4xx JSON error):
    --max-size N (${DEFAULT_LIMITS.maxSize} px)  --max-steps N (${DEFAULT_LIMITS.maxSteps})  --max-n N (${DEFAULT_LIMITS.maxN})  --max-queue N (${DEFAULT_LIMITS.maxQueue} waiting per model)
    --max-body BYTES (${DEFAULT_LIMITS.maxBodyBytes})  --max-upload-pixels N (${DEFAULT_LIMITS.maxUploadPixels})`;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export const LIMIT_FLAGS: Record<string, keyof Limits> = {
  'max-size': 'maxSize', 'max-steps': 'maxSteps', 'max-n': 'maxN', 'max-queue': 'maxQueue', 'max-body': 'maxBodyBytes', 'max-upload-pixels': 'maxUploadPixels',
};

export class ServeUsageError extends Error {}

export const MODEL_OPTIONS = {
  model: { type: 'string', multiple: true },
  config: { type: 'string' },
  ckpt: { type: 'string' },
  name: { type: 'string' },
  ema: { type: 'boolean' },
  'no-ema': { type: 'boolean' },
  vocab: { type: 'string' },
  'class-names': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 0) throw new ServeUsageError(`--${flag} expects a non-negative integer, got "${v}"`);
  return x;
}

/** The models named by --model / --config --ckpt (default: the embedded model). */
export function modelSpecs(v: { model?: string[]; config?: string; ckpt?: string; name?: string; ema?: boolean; 'no-ema'?: boolean; vocab?: string; 'class-names'?: string }): ModelSpec[] {
  if (v.ema && v['no-ema']) throw new ServeUsageError('give either --ema or --no-ema');
  const ema = v.ema ? true : v['no-ema'] ? false : 'auto';
  const common = { ema, vocab: v.vocab, classNames: v['class-names'] } as const;
  const specs: ModelSpec[] = (v.model ?? []).map((source) => ({ source, ...common }));
  if (v.ckpt) specs.push({ source: v.ckpt, config: v.config, ...common });
  else if (v.config) throw new ServeUsageError('--config needs --ckpt (or use --model <folder>)');
  if (specs.length === 0) specs.push({ ...common });
  if (v.name) {
    if (specs.length > 1) throw new ServeUsageError('--name names a single model');
    specs[0].name = v.name;
  }
  return specs;
}

export async function serveCommand(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '7860' }, out: { type: 'string', default: 'outputs/serve' },
        token: { type: 'string' }, redis: { type: 'string' }, queue: { type: 'string', default: 'ldm' },
        ...Object.fromEntries(Object.keys(LIMIT_FLAGS).map((k) => [k, { type: 'string' }])),
      },
    }).values as Record<string, string | string[] | boolean | undefined>;
  } catch (e) {
    console.error(`ldm serve: ${(e as Error).message}\n${SERVE_USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  let limits: Limits, port: number, specs: ModelSpec[];
  const host = v.host as string, token = v.token as string | undefined;
  try {
    limits = { ...DEFAULT_LIMITS };
    for (const [flag, key] of Object.entries(LIMIT_FLAGS)) {
      const x = positiveInt(v[flag] as string | undefined, flag);
      if (x !== undefined) limits[key] = x;
    }
    port = positiveInt(v.port as string, 'port')!;
    if (port > 65535) throw new ServeUsageError(`--port ${port} is not a port number`);
    if (!LOOPBACK.has(host) && !token) throw new ServeUsageError(`binding to ${host} (not loopback) needs --token: every /api request must then carry Authorization: Bearer <token>`);
    if (token !== undefined && token.length < 8) throw new ServeUsageError('--token must be at least 8 characters');
    specs = modelSpecs(v as Parameters<typeof modelSpecs>[0]);
    if (v.redis && (v.model || v.ckpt || v.config)) throw new ServeUsageError('with --redis the models are loaded by the workers (ldm worker --model …), not by serve');
  } catch (e) {
    if (e instanceof ServeUsageError) {
      console.error(`ldm serve: ${e.message}`);
      return 2;
    }
    throw e;
  }

  const log = (s: string) => process.stderr.write(`${s}\n`);
  const store = new ResultStore(v.out as string);
  let backend;
  if (v.redis) {
    backend = await RedisBackend.connect({ url: v.redis as string, prefix: v.queue as string, store, log });
  } else {
    const runners = new Map<string, ModelRunner>();
    for (const spec of specs) {
      const r = await ModelRunner.start(spec, log);
      if (runners.has(r.info.name)) throw new Error(`two models are named ${r.info.name}; rename one with --name or a different folder`);
      runners.set(r.info.name, r);
      log(`loaded ${r.info.name} (${r.info.task} model) in ${(r.loadMs / 1000).toFixed(1)} s`);
    }
    backend = new LocalBackend(runners, store, log);
  }
  const app = await buildServer({ backend, store, limits, token });
  const address = await app.listen({ host, port });
  console.log(`ldm serve: listening on ${address.replace('[::1]', 'localhost')}${v.redis ? ` (jobs queued on ${v.redis})` : ''}; results in ${store.dir}`);
  await new Promise<void>((resolve) => {
    const stop = () => void app.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
