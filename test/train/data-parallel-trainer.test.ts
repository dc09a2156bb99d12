// `mpirun -np N ldm train …` against one process with the global batch: N ranks with per-rank batch B for
// K steps end with the weights of one process with batch N·B (the same learning rate: main.py's scaling
// multiplies by the number of ranks), for the LDM trainer (cached latents, scale_by_std, condition
// dropout, EMA) and the autoencoder trainer (before disc_start: the discriminator's BatchNorm sees per-rank
// batches, as under DDP without SyncBatchNorm). Real mpirun processes over loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { aeConfig, ldmConfig, tmpRoot, writeConfig } from './trainer-helpers.js';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/ldm.mjs');
const addon = path.join(root, 'native/mpi/build/Release/ldm_mpi.node');
const skip = spawnSync('mpirun', ['--version']).status !== 0 ? 'mpirun not found (apt-get install openmpi-bin libopenmpi-dev)' : !existsSync(addon) ? `MPI addon not built (${addon})` : false;
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', LDM_NUM_THREADS: '1' };

function train(cmd: string, config: string, logdir: string, np: number, batch: number, overrides: string[] = []): string {
  const args = [bin, cmd, '--config', config, '--logdir', logdir, '--quiet', '--seed', '7', `data.params.batch_size=${batch}`, ...overrides];
  const argv = np === 1 ? [process.execPath, ...args] : ['mpirun', '--oversubscribe', '-np', String(np), process.execPath, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, env, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `${argv.join(' ')}\n${r.stdout}\n${r.stderr}`);
  const runs = readdirSync(logdir);
  assert.equal(runs.length, 1, `one run folder (rank 0 only): ${runs}`);
  return path.join(logdir, runs[0], 'checkpoints', 'last', 'model.safetensors');
}

/**
 * Relative L2 difference of all the tensors matching `keep` together (the criterion), and the largest per-tensor
 * one (reported: Adam normalises each gradient entry, so a parameter whose gradient is float32 noise can move
 * either way by ~lr in the first steps — the same amplification the reference shows between two runs).
 */
function compare(a: string, b: string, keep: (k: string) => boolean): { global: number; worst: number; key: string; n: number } {
  const x = readSafetensors(a).tensors, y = readSafetensors(b).tensors;
  let w = 0, key = '', n = 0, num = 0, den = 0;
  for (const [k, t] of x) {
    if (!keep(k) || t.dtype !== 'float32') continue;
    const u = t.data as Float32Array, v = y.get(k)!.data as Float32Array;
    let dn = 0, dd = 0;
    for (let i = 0; i < u.length; i++) {
      dn += (u[i] - v[i]) ** 2;
      dd += u[i] ** 2;
    }
    num += dn;
    den += dd;
    const r = dd > 0 ? Math.sqrt(dn / dd) : Math.sqrt(dn);
    if (r > w) [w, key] = [r, k];
    n++;
  }
  return { global: Math.sqrt(num / den), worst: w, key, n };
}

/** The logged losses of a run, step by step. */
function losses(ckpt: string, key: string): number[] {
  const metrics = path.join(path.dirname(path.dirname(path.dirname(ckpt))), 'metrics.jsonl');
  return readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l)[key] as number);
}

function assertSameLosses(a: number[], b: number[], what: string): void {
  assert.equal(a.length, b.length, `${what}: steps`);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * Math.abs(v), `${what} step ${i + 1}: ${v} vs ${b[i]}`));
}

test('ldm train: 2 and 4 ranks × batch B give the weights of 1 process × batch N·B', { skip }, () => {
  const dir = tmpRoot();
  const config = writeConfig(dir, 'ldm', ldmConfig({ train: 16, steps: 4 }));
  // Cached latents (encoded in per-rank blocks) for 2 and 4 ranks; images encoded every step for 2.
  for (const cache of [true, false]) {
    const over = cache ? [] : ['training.cache_latents=false'];
    const single = train('train', config, path.join(dir, `np1-${cache}`), 1, 4, over);
    for (const np of cache ? [2, 4] : [2]) {
      const multi = train('train', config, path.join(dir, `np${np}-${cache}`), np, 4 / np, over);
      assertSameLosses(losses(single, 'train/loss'), losses(multi, 'train/loss'), `${np} ranks, train/loss`);
      const w = compare(single, multi, (k) => k.startsWith('model.') || k.startsWith('model_ema.') || k.startsWith('cond_stage_model.') || k === 'scale_factor');
      const sf = [single, multi].map((f) => (readSafetensors(f).tensors.get('scale_factor')!.data as Float32Array)[0]);
      console.log(`# ldm train${cache ? '' : ' (no latent cache)'}, ${np} ranks vs 1 process: ${w.n} tensors, relative L2 difference ${w.global.toExponential(2)} overall, largest per tensor ${w.worst.toExponential(2)} (${w.key}); scale_factor ${sf[0]} vs ${sf[1]}`);
      assert.ok(w.n > 50);
      assert.ok(w.global < 1e-4, `${np} ranks: the weights differ by ${w.global} overall`);
      assert.ok(Math.abs(sf[0] - sf[1]) <= 1e-6 * sf[0], `scale_by_std over the ranks: ${sf[1]}, one process: ${sf[0]}`);
    }
  }
});

test('ldm train-autoencoder: 2 ranks × batch B give the generator weights of 1 process × batch 2B', { skip }, () => {
  const dir = tmpRoot();
  const config = writeConfig(dir, 'ae', aeConfig({ train: 16, steps: 3, discStart: 3 }));
  const single = train('train-autoencoder', config, path.join(dir, 'np1'), 1, 4);
  const multi = train('train-autoencoder', config, path.join(dir, 'np2'), 2, 2);
  assertSameLosses(losses(single, 'train/rec_loss'), losses(multi, 'train/rec_loss'), 'train/rec_loss');
  const w = compare(single, multi, (k) => k.startsWith('encoder.') || k.startsWith('decoder.') || k.includes('quant_conv'));
  console.log(`# train-autoencoder, 2 ranks vs 1 process: ${w.n} tensors, relative L2 difference ${w.global.toExponential(2)} overall, largest per tensor ${w.worst.toExponential(2)} (${w.key})`);
  assert.ok(w.n > 20);
  // Looser than the LDM: Adam's first steps move every entry by about ±lr whatever its size, so entries whose
  // gradient is at the float32 rounding level (many in a 3-step autoencoder run) flip with the summation order.
  // The losses above, equal to 1e-5 at every step, are the sharp check.
  assert.ok(w.global < 5e-3, `the generator weights differ by ${w.global} overall`);
});
