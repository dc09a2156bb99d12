// The native kernel pool's size: the CPUs a process may run on, shared out among the ranks an MPI launcher
// started on the machine, so that an MPI rank per core never runs more threads than there are CPUs; and
// LDM_NUM_THREADS overrides it. Checked in child processes (the pool is sized once, at first use), and under
// a real `mpirun`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/engine/kernels/native.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, 'fixtures', 'print-threads.ts');
const skip = nativeAvailable() ? false : 'native addon not built';
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;

type Report = { threads: number; cpus: number };

function clean(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['LDM_NUM_THREADS', 'OMPI_COMM_WORLD_LOCAL_SIZE', 'MPI_LOCALNRANKS', 'OMPI_COMM_WORLD_SIZE', 'PMI_SIZE']) delete env[k];
  return env;
}

function threadsWith(extra: Record<string, string>): Report {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...clean(), ...extra }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('kernel threads: all CPUs alone, split among local MPI ranks (at least one each), LDM_NUM_THREADS wins', { skip }, () => {
  const alone = threadsWith({});
  assert.equal(alone.threads, alone.cpus);
  for (const [name, ranks] of [['OMPI_COMM_WORLD_LOCAL_SIZE', 2], ['MPI_LOCALNRANKS', 3], ['OMPI_COMM_WORLD_LOCAL_SIZE', 64]] as const) {
    const r = threadsWith({ [name]: String(ranks) });
    assert.equal(r.threads, Math.max(1, Math.floor(r.cpus / ranks)), `${name}=${ranks} on ${r.cpus} CPUs`);
  }
  assert.equal(threadsWith({ OMPI_COMM_WORLD_LOCAL_SIZE: '2', LDM_NUM_THREADS: '3' }).threads, 3);
});

test('kernel threads under mpirun: unbound ranks share the CPUs; ranks bound to a core use that core', { skip: skip || (hasMpirun ? false : 'mpirun not found (apt-get install openmpi-bin)') }, () => {
  const env = { ...clean(), OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
  for (const binding of ['none', 'core']) {
    const r = spawnSync('mpirun', ['--oversubscribe', '--bind-to', binding, '-np', '2', process.execPath, '--import', 'tsx', script], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const reports: Report[] = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.equal(reports.length, 2, r.stdout);
    const total = reports.reduce((a, x) => a + x.threads, 0);
    const cpus = threadsWith({}).cpus;
    assert.ok(total <= Math.max(2, cpus), `--bind-to ${binding}: 2 ranks run ${total} kernel threads on ${cpus} CPUs`);
    if (binding === 'core') assert.deepEqual(reports.map((x) => x.threads), [1, 1]);
  }
});
