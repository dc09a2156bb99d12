// Checkpoint writes are all-or-nothing: a write that throws half way, or a process SIGKILLed while writing,
// never leaves a truncated or unreadable checkpoint under a step-* name, and `last` always points at a
// complete one. Keep-last-K pruning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/engine/index.js';
import { Adam } from '../../src/nn/optim.js';
import { Parameter } from '../../src/nn/index.js';
import { findLatestCheckpoint, listCheckpoints, readCheckpointDir, restoreOptimizer, saveCheckpoint, setCheckpointWriteHook, type TrainingState } from '../../src/train/checkpoint.js';
import { tmpRoot } from './trainer-helpers.js';

const root = tmpRoot();
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function state(step: number): TrainingState {
  return { kind: 'test', globalStep: step, epoch: 0, loader: { position: step }, rng: { default: [1, 2, 3, 4, NaN] }, schedulerStep: step, extra: {} };
}

function setup(n = 1000) {
  const p = new Parameter(T.tensor(Float32Array.from({ length: n }, (_, i) => i / n), [n]));
  const opt = new Adam([p], { lr: 1e-2 });
  p.grad = T.keep(T.full([n], 0.5));
  opt.step();
  return { p, opt };
}

test('checkpoint: saved weights, optimizer moments and state read back; keep-last-K keeps the newest K', () => {
  const dir = path.join(root, 'keep', 'checkpoints');
  const { p, opt } = setup();
  for (const step of [10, 20, 30, 40]) saveCheckpoint(dir, { weights: new Map([['w', p]]), optimizers: [opt], state: state(step), configYaml: 'model: {}\n', keepLast: 2 });
  assert.deepEqual(readdirSync(dir).sort(), ['last', 'step-000030', 'step-000040']);
  const ck = findLatestCheckpoint(dir)!;
  assert.equal(ck.state.globalStep, 40);
  assert.deepEqual(ck.state.rng.default.slice(0, 4), [1, 2, 3, 4]);
  assert.deepEqual([...(ck.weights.get('w')!.data as Float32Array)], [...(p.data as Float32Array)]);
  const fresh = new Adam([new Parameter(T.zeros([1000]))], { lr: 1 });
  restoreOptimizer(ck, 0, fresh);
  assert.equal(fresh.lr, 1e-2);
  const st = [...fresh.state.values()][0];
  assert.equal(st.step, 1);
  assert.deepEqual([...st.buffers.exp_avg], [...[...opt.state.values()][0].buffers.exp_avg]);
});

test('checkpoint: a write that fails half way leaves no step folder and keeps last on the previous one', () => {
  const dir = path.join(root, 'throw', 'checkpoints');
  const { p, opt } = setup();
  saveCheckpoint(dir, { weights: new Map([['w', p]]), optimizers: [opt], state: state(1), configYaml: '', keepLast: 3 });
  for (const stage of ['model', 'state', 'rename']) {
    setCheckpointWriteHook((s) => {
      if (s === stage) throw new Error(`disk full (${s})`);
    });
    try {
      assert.throws(() => saveCheckpoint(dir, { weights: new Map([['w', p]]), optimizers: [opt], state: state(2), configYaml: '', keepLast: 3 }), /disk full/);
    } finally {
      setCheckpointWriteHook(null);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['last', 'step-000001'], `after a failure at ${stage}`);
    assert.equal(readlinkSync(path.join(dir, 'last')), 'step-000001');
  }
  // A step folder damaged behind our back (truncated file) is skipped by resume, with a warning.
  saveCheckpoint(dir, { weights: new Map([['w', p]]), optimizers: [opt], state: state(3), configYaml: '', keepLast: 3 });
  writeFileSync(path.join(dir, 'step-000003', 'model.safetensors'), 'trunc');
  const warnings: string[] = [];
  assert.equal(findLatestCheckpoint(dir, (w) => void warnings.push(w))!.state.globalStep, 1);
  assert.match(warnings[0], /skipping checkpoint .*step-000003/);
});

test('checkpoint: a save stopped between its rename and the re-link of last is found; an earlier life\'s newer folders are not', () => {
  const dir = path.join(root, 'link', 'checkpoints');
  const { p, opt } = setup();
  const save = (step: number) => saveCheckpoint(dir, { weights: new Map([['w', p]]), optimizers: [opt], state: state(step), configYaml: '', keepLast: 10 });
  save(1);
  setCheckpointWriteHook((s) => {
    if (s === 'link') throw new Error('killed');
  });
  try {
    assert.throws(() => save(2), /killed/);
  } finally {
    setCheckpointWriteHook(null);
  }
  assert.equal(readlinkSync(path.join(dir, 'last')), 'step-000001');
  assert.equal(findLatestCheckpoint(dir)!.state.globalStep, 2);
  // A run that went on to step 4, then resumed from step 2 and saved step 3 again: step 4 is of the earlier life.
  save(3);
  save(4);
  save(3);
  assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [1, 2, 3, 4]);
  assert.equal(findLatestCheckpoint(dir)!.state.globalStep, 3);
});

test('checkpoint: a process SIGKILLed while writing checkpoints leaves only complete ones', async () => {
  const dir = path.join(root, 'kill', 'checkpoints');
  const child = path.join(root, 'writer.ts');
  // 16 MB of weights per checkpoint, written in a loop until killed.
  writeFileSync(child, `
    import * as T from ${JSON.stringify(path.join(repo, 'src/engine/index.ts'))};
    import { saveCheckpoint } from ${JSON.stringify(path.join(repo, 'src/train/checkpoint.ts'))};
    const w = T.keep(T.randn([4, 1024, 1024]));
    for (let step = 1; ; step++) {
      saveCheckpoint(${JSON.stringify(dir)}, { weights: new Map([['w', w]]), optimizers: [], state: { kind: 'test', globalStep: step, epoch: 0, loader: null, rng: {}, schedulerStep: step, extra: {} }, configYaml: '', keepLast: 100 });
      if (step === 2) process.stdout.write('ready\\n');
    }
  `);
  const proc = spawn(process.execPath, ['--import', 'tsx', child], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    proc.on('exit', (c) => reject(new Error(`writer exited early (${c})`)));
  });
  await new Promise((r) => setTimeout(r, 150 + Math.random() * 300));
  proc.kill('SIGKILL');
  await new Promise((r) => proc.on('exit', r));
  const steps = listCheckpoints(dir);
  assert.ok(steps.length >= 2);
  for (const c of steps) {
    const ck = readCheckpointDir(c.dir); // throws on a truncated or missing file
    assert.equal(ck.weights.get('w')!.size, 4 << 20);
  }
  const last = findLatestCheckpoint(dir)!;
  assert.equal(last.state.globalStep, steps[steps.length - 1].step);
  assert.ok(existsSync(path.join(dir, 'last')));
  console.log(`killed after ${steps.length} complete checkpoints; left-overs: ${readdirSync(dir).filter((n) => n.startsWith('.tmp-')).join(', ') || 'none'}`);
});
