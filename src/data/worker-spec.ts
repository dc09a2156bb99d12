// Rebuilding a dataset from its WorkerSpec (inside a loader worker thread).

import type { Dataset, WorkerSpec } from './types.js';

export async function datasetFromSpec(spec: WorkerSpec): Promise<Dataset> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const f = mod[spec.factory];
  if (typeof f !== 'function') throw new Error(`dataset worker: ${spec.module} has no factory ${spec.factory}`);
  return (await (f as (a: unknown) => Dataset | Promise<Dataset>)(spec.args)) as Dataset;
}
