// `ldm worker`: a fleet worker that takes generation jobs from Redis (see src/serve/fleet-worker.ts).

import { parseArgs } from 'node:util';
import { startFleetWorker } from '../serve/fleet-worker.js';
import { MODEL_OPTIONS, modelSpecs, positiveInt, ServeUsageError } from './serve.js';

export const WORKER_USAGE = `usage: ldm worker --redis redis://host:port [--model <folder|file|embedded name> | --config F --ckpt F] [options]
  Takes jobs for its model from the BullMQ queue that \`ldm serve --redis\` fills, runs them and sends the
  PNGs and parameters back through Redis (no shared disk). Several workers may serve one model.
    --name N  --ema | --no-ema  --vocab F  --class-names F   as for ldm serve
    --queue NAME         the queue name prefix (default ldm; the same as serve's)
    --lock-ms N          BullMQ lock duration (default 30000): a job whose worker stops renewing its lock for
                         this long is taken back
    --stalled-ms N       how often this worker checks for such stalled jobs (default 30000)
    --max-stalled N      how many times a job may stall before it fails (default 1)`;

export async function workerCommand(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: { ...MODEL_OPTIONS, redis: { type: 'string' }, queue: { type: 'string', default: 'ldm' }, 'lock-ms': { type: 'string' }, 'stalled-ms': { type: 'string' }, 'max-stalled': { type: 'string' } },
    }).values;
  } catch (e) {
    console.error(`ldm worker: ${(e as Error).message}\n${WORKER_USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(WORKER_USAGE);
    return 0;
  }
  let specs, lockDuration, stalledInterval, maxStalledCount;
  try {
    if (!v.redis) throw new ServeUsageError('--redis redis://host:port is required');
    specs = modelSpecs(v);
    if (specs.length !== 1) throw new ServeUsageError('a worker serves one model (start one worker per model)');
    lockDuration = positiveInt(v['lock-ms'], 'lock-ms');
    stalledInterval = positiveInt(v['stalled-ms'], 'stalled-ms');
    maxStalledCount = positiveInt(v['max-stalled'], 'max-stalled');
  } catch (e) {
    if (e instanceof ServeUsageError) {
      console.error(`ldm worker: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const w = await startFleetWorker({ url: v.redis!, prefix: v.queue, spec: specs[0], lockDuration, stalledInterval, maxStalledCount, log });
  await new Promise<void>((resolve) => {
    const stop = () => void w.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
