// A loader worker: rebuilds the dataset from its WorkerSpec, then assembles the batches it is asked for
// (decode, resize, crop, flip) and sends the buffers back transferred (no copy).

import { parentPort, workerData } from 'node:worker_threads';
import { assembleBatch } from './assemble.js';
import { datasetFromSpec } from './worker-spec.js';
import type { AugDraw, WorkerSpec } from './types.js';

interface Job {
  id: number;
  indices: Int32Array;
  draws: AugDraw[] | null;
}

const port = parentPort!;
const ready = datasetFromSpec((workerData as { spec: WorkerSpec }).spec);
ready.catch(() => {}); // reported per job

port.on('message', async (job: Job | { close: true }) => {
  // The loader's close(): after the job in hand (jobs run one at a time), the port closes and the worker exits
  // on its own. (Terminating a worker inside a decode can abort the process: Node 20 asserts when a zlib stream
  // is torn down before its initialisation finished.)
  if ('close' in job) {
    port.close();
    return;
  }
  try {
    const ds = await ready;
    const raw = assembleBatch(ds, job.indices, job.draws);
    port.postMessage({ id: job.id, raw }, [raw.image.buffer as ArrayBuffer, ...(raw.labels ? [raw.labels.buffer as ArrayBuffer] : [])]);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message });
  }
});
