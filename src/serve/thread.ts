// A generation thread: loads one model, then runs the jobs it is sent one at a time. Sampling is
// synchronous and CPU-bound, so it runs here and the main thread's event loop stays free to answer
// status requests, stream progress and renew queue locks. Cancelling: the main thread sets a shared
// flag that the step callback reads (Atomics), so a running job stops after its current step.

import { parentPort, workerData } from 'node:worker_threads';
import path from 'node:path';
import { WeightCache, weightCacheBudget } from '../engine/index.js';
import { loadModel } from '../loader/model.js';
import { describeModel } from './model-info.js';
import { generate } from './generate.js';
import type { ThreadInit, ThreadRequest, ThreadMessage } from './runner.js';

const init = workerData as ThreadInit;
const port = parentPort!;
const flag = new Int32Array(init.cancelFlag);
const post = (m: ThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

try {
  const loaded = loadModel(init.source, { config: init.config, ema: init.ema ?? 'auto', log: (s: string) => post({ type: 'log', message: s }) });
  const { model } = loaded;
  const name = init.name ?? loaded.name ?? modelName(loaded.files.ckpt);
  const info = describeModel(name, model, { classNamesFile: init.classNames, embedded: loaded.info });
  post({ type: 'ready', info, loadMs: Math.round(loaded.seconds * 1000), parameters: model.numParameters() });
  // LDM_WEIGHT_CACHE_MB: packed convolution weights kept for this model's lifetime, so that only its first
  // job packs them (the weights never change here).
  const budget = weightCacheBudget();
  const cache = budget > 0 ? new WeightCache(budget) : null;

  port.on('message', (req: ThreadRequest) => {
    if (req.type !== 'run') return;
    Atomics.store(flag, 0, 0);
    try {
      const job = () => generate(model, info, req.spec, {
        vocabFile: init.vocab,
        cancelled: () => Atomics.load(flag, 0) === 1,
        onProgress: (step, total, preview) => post({ type: 'progress', id: req.id, step, total, preview }),
      });
      const r = cache ? cache.run(job) : job();
      if (r.cancelled) post({ type: 'cancelled', id: req.id });
      else post({ type: 'result', id: req.id, images: r.images, params: r.params });
    } catch (e) {
      post({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) });
    }
  });
} catch (e) {
  post({ type: 'failed', message: e instanceof Error ? e.message : String(e) });
}

/** A model's name from its files: the folder of model.* / weights.* files, else the file name. */
function modelName(ckpt: string): string {
  const base = path.basename(ckpt).replace(/\.[^.]+$/, '');
  return base === 'model' || base === 'weights' || base === 'last' ? path.basename(path.dirname(ckpt)) : base;
}
