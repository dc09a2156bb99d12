// Memory under load, training: `ldm train` (trainLDM) for N steps (default 10,000) of a tiny class-conditional
// config — configs/mnist/ldm-cond-kl-f4.yaml with one res block per level, batch 4, 512 training digits,
// a checkpoint every 1,000 steps (keep 2), no image grids — printing RSS after a full GC every few hundred
// steps (between steps) and the growth from after the warm-up to the end. Ctrl-C ends training early (the
// trainer finishes its step and writes a checkpoint) and the report covers the steps run.
//
// The warm-up ends after the first checkpoint (step 1,000), whose write allocates its buffers once.
//
//   node --expose-gc --import tsx scripts/memory-train.ts [--steps 10000] [--every 500] [--warmup 1500] [--batch 4]

import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainLDM } from '../src/train/train-ldm.js';
import { RssLog, args } from './memory-common.js';

const o = args({ steps: 10000, every: 500, warmup: 1500, batch: 4 });
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const logdir = mkdtempSync(path.join(tmpdir(), 'ldm-memory-train-'));
const log = new RssLog('step');

/** The step of the last complete line of metrics.jsonl (read from its tail). */
function currentStep(file: string): number {
  if (!existsSync(file)) return 0;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size, n = Math.min(size, 4096);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, size - n);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.startsWith('{') && l.endsWith('}'));
    return lines.length ? (JSON.parse(lines[lines.length - 1]).step as number) : 0;
  } finally {
    closeSync(fd);
  }
}

let metrics: string | null = null;
let next = 0;
// Timers run between steps (the loop yields to the event loop after each one).
const timer = setInterval(() => {
  const step = metrics ? currentStep(metrics) : 0;
  if (metrics && step >= next) {
    log.take(step);
    next = (Math.floor(step / o.every) + 1) * o.every;
  }
}, 100);

const held = 10000 - 512;
const t0 = Date.now();
const r = await trainLDM({
  config: [path.join(repo, 'configs/mnist/ldm-cond-kl-f4.yaml')],
  overrides: [
    'model.params.unet_config.params.num_res_blocks=1', `data.params.batch_size=${o.batch}`,
    `data.params.train.params.held_out=${held}`, `data.params.validation.params.held_out=${held}`,
    'training.ckpt_every=1000', 'training.keep_last=2', 'training.image_every=0', 'lightning.trainer.log_every_n_steps=1000',
  ],
  maxSteps: o.steps, logdir, name: 'memory', quiet: true, tty: false,
  log: (s) => {
    if (/run folder/.test(s)) metrics = path.join(s.split('run folder ').pop()!.trim(), 'metrics.jsonl');
    console.log(s);
  },
});
clearInterval(timer);
log.take(r.globalStep);
const seconds = (Date.now() - t0) / 1000;
console.log(`${r.globalStep} steps in ${seconds.toFixed(0)} s (${r.itPerSec.toFixed(2)} it/s in the loop)`);
log.report(o.warmup);
rmSync(logdir, { recursive: true, force: true });
