// Data-parallel training on real `mpirun` processes over loopback: N ranks with per-rank batch B give the
// weights of one process with batch N·B (float32 summation-order tolerance), gradients reduced in several
// buckets overlapped with backward. Skipped with one line where Open MPI or the addon is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';

const root = path.resolve(import.meta.dirname, '../..');
const worker = path.join(root, 'test/train/fixtures/dp-worker.ts');
const addon = path.join(root, 'native/mpi/build/Release/ldm_mpi.node');
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;
const skip = !hasMpirun ? 'mpirun not found (apt-get install openmpi-bin libopenmpi-dev)' : !existsSync(addon) ? `MPI addon not built (${addon})` : false;
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', LDM_NUM_THREADS: '1' };

function run(np: number, out: string): void {
  const node = [process.execPath, '--import', 'tsx', worker, out];
  const argv = np === 1 ? node : ['mpirun', '--oversubscribe', '-np', String(np), ...node];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${argv.join(' ')}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /buckets [2-9]/, 'gradients travel in several buckets');
}

function worstRelDiff(a: string, b: string): number {
  const x = readSafetensors(a).tensors, y = readSafetensors(b).tensors;
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  let worst = 0, moved = 0;
  for (const [k, t] of x) {
    const u = t.data as Float32Array, v = y.get(k)!.data as Float32Array;
    let num = 0, den = 0;
    for (let i = 0; i < u.length; i++) {
      num += (u[i] - v[i]) ** 2;
      den += u[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / den));
    moved++;
  }
  assert.ok(moved >= 4);
  return worst;
}

test('data-parallel: 2 and 4 ranks with batch B equal one process with batch N·B', { skip }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ldm-dp-'));
  const single = path.join(dir, 'np1.safetensors');
  run(1, single);
  for (const np of [2, 4]) {
    const out = path.join(dir, `np${np}.safetensors`);
    run(np, out);
    const d = worstRelDiff(single, out);
    console.log(`# ${np} ranks vs 1 process: largest relative L2 difference of a parameter ${d.toExponential(2)}`);
    assert.ok(d < 1e-5, `${np} ranks: relative difference ${d}`);
  }
});
