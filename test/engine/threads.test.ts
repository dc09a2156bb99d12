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

test('setThreads keeps its workers: shrinking parks them, growing wakes the same threads; products stay right', { skip: skip || (process.platform !== 'linux' && 'reads /proc/self/task') }, async () => {
  const { nativeAddon } = await import('../../src/engine/kernels/native.js');
  const { readdirSync } = await import('node:fs');
  const n = nativeAddon();
  const before = n.info().threads;
  const M = 96, N = 80, K = 64;
  const A = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 13) - 6), B = Float32Array.from({ length: K * N }, (_, i) => ((i * 5) % 11) - 5);
  const want = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) want[i * N + j] += A[i * K + k] * B[k * N + j];
  const product = () => {
    const C = new Float32Array(M * N);
    n.gemm(false, false, M, N, K, 1, A, 0, K, 0, B, 0, N, 0, 0, C, 0, N, 0, 1, null);
    return C;
  };
  const tids = () => new Set(readdirSync('/proc/self/task'));
  try {
    n.setThreads(3);
    const three = tids();
    for (const t of [1, 2, 3, 1, 3]) {
      n.setThreads(t);
      assert.equal(n.info().threads, t);
      assert.deepEqual(Array.from(product()), Array.from(want), `${t} threads`);  // small integers: exact
    }
    const after = tids();
    const gone = [...three].filter((t) => !after.has(t)), born = [...after].filter((t) => !three.has(t));
    assert.deepEqual([gone, born], [[], []], 'switching the size started or ended threads');
  } finally {
    n.setThreads(before);
  }
});
