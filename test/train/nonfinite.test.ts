// NaN / Inf in training: a diverging run (an absurd learning rate) stops with a message naming the step and the
// loss, without writing the diverged state — the last checkpoint stays the last good one; weights that
// overflow to infinity are never written to a checkpoint; `--resume` from a checkpoint with a NaN in its weights
// or its optimizer state refuses, naming the file and the tensor; a gradient that is infinite while the loss is
// finite is reported with the parameter's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { main } from '../../src/cli/main.js';
import { Parameter } from '../../src/nn/index.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { trainLDM } from '../../src/train/train-ldm.js';
import { trainAutoencoder } from '../../src/train/train-autoencoder.js';
import { NonFiniteError, assertFiniteGradients } from '../../src/train/finite.js';
import { aeConfig, ldmConfig, quiet, tmpRoot, writeConfig } from './trainer-helpers.js';
import { checkAllComplete } from './crash-helpers.js';

const root = tmpRoot();

/** The NonFiniteError a promise rejects with. */
async function nonFinite(p: Promise<unknown>): Promise<NonFiniteError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof NonFiniteError) return e;
    throw e;
  }
  assert.fail('expected the run to stop on a non-finite value');
}

function runOf(logdir: string): string {
  const runs = readdirSync(logdir);
  assert.equal(runs.length, 1);
  return path.join(logdir, runs[0]);
}

test('ldm train: a loss that diverges to NaN stops the run naming the step and the loss; the last checkpoint is the last good one', async () => {
  const cfg = writeConfig(root, 'diverge', ldmConfig({ steps: 12, lr: 1e30 }));
  const logdir = path.join(root, 'diverge');
  const e = await nonFinite(trainLDM(quiet([], { config: [cfg], logdir, scaleLr: false, ckptEvery: 1 })));
  console.log(`diverging LDM: ${e.message}`);
  const m = /^step (\d+): the loss is not finite \((train\/[\w/]+ = (?:NaN|-?Infinity))/.exec(e.message);
  assert.ok(m, e.message);
  const step = Number(m[1]);
  assert.ok(step >= 2 && step <= 12, e.message);
  assert.equal(e.step, step);
  assert.match(e.message, new RegExp(`Training stopped at step ${step} without writing this state; the last good checkpoint is step-${String(step - 1).padStart(6, '0')} \\(after step ${step - 1}\\)`));
  const st = checkAllComplete(path.join(runOf(logdir), 'checkpoints')); // every folder finite and readable
  assert.equal(st.last, step - 1);
  assert.ok(Math.max(...st.steps) < step);
  // Resuming from the last good checkpoint meets the same divergence at the same step (the run is exact).
  const again = await nonFinite(trainLDM(quiet([], { resume: runOf(logdir) })));
  assert.equal(again.step, step);
  assert.match(again.message, /the last good checkpoint is step-/);
});

test('ldm train: weights that overflow to infinity or NaN are never written; the message names the tensor', async () => {
  // Adam moves every weight by about lr per step: 1e39 exceeds float32, so the first update (in float32, as
  // PyTorch's) makes them infinite, or NaN where the first moment is 0 (∞ · 0).
  const cfg = writeConfig(root, 'overflow', ldmConfig({ steps: 4, lr: 1e39 }));
  const logdir = path.join(root, 'overflow');
  const e = await nonFinite(trainLDM(quiet([], { config: [cfg], logdir, scaleLr: false, ckptEvery: 1 })));
  console.log(`overflowing LDM: ${e.message}`);
  assert.match(e.message, /\/checkpoints: checkpoint step-000001 not written: [\w.]+ holds (?:NaN|-?Infinity) at element \d+ of \[[\d, ]+\]( \(\d+ non-finite values\))?; the last complete checkpoint stays as it is/);
  assert.match(e.message, /Training stopped at step 1 without writing this state; no checkpoint was written yet/);
  const ck = path.join(runOf(logdir), 'checkpoints');
  assert.deepEqual(readdirSync(ck), []); // not even a temporary folder
});

test('ldm train-autoencoder: a diverging generator stops the run before the next optimizer step, naming the step and the loss', async () => {
  // The generator's first Adam step (lr 1e30) makes the decoder's output overflow: the discriminator pass of the
  // same step meets NaN logits and stops before the discriminator's optimizer step; nothing is written.
  const cfg = writeConfig(root, 'ae-diverge', aeConfig({ steps: 8, train: 4, batch: 2, discStart: 1000, lr: 1e30 }));
  const logdir = path.join(root, 'ae-diverge');
  const e = await nonFinite(trainAutoencoder(quiet([], { config: [cfg], logdir, scaleLr: false, ckptEvery: 1 })));
  console.log(`diverging autoencoder: ${e.message}`);
  assert.match(e.message, /^step 1: the discriminator loss is not finite \(train\/logits_fake = NaN[),]/);
  assert.match(e.message, /Training stopped at step 1 without writing this state; no checkpoint was written yet/);
  assert.equal(e.step, 1);
  assert.deepEqual(readdirSync(path.join(runOf(logdir), 'checkpoints')), []);
});

test('--resume refuses a checkpoint whose weights or optimizer state hold NaN, naming the file and the tensor', async () => {
  const cfg = writeConfig(root, 'poison', ldmConfig({ steps: 4 }));
  const logdir = path.join(root, 'poison');
  await trainLDM(quiet([], { config: [cfg], logdir, ckptEvery: 2, keepLast: 3 }));
  const run = runOf(logdir);
  const poison = (file: string, key: string, at: number) => {
    const f = readSafetensors(file);
    const t = f.tensors.get(key);
    assert.ok(t, `${key} in ${file}`);
    (t.data as Float32Array)[t.offset + at] = NaN;
    writeSafetensors(file, f.tensors, f.metadata);
  };
  // Optimizer state of the newest checkpoint (resumed as the run's latest: refused, not skipped for step 2).
  const s4 = path.join(run, 'checkpoints', 'step-000004');
  poison(path.join(s4, 'state.safetensors'), 'optimizer.0.state.3.exp_avg_sq', 5);
  let e = await nonFinite(trainLDM(quiet([], { resume: run })));
  assert.match(e.message, new RegExp(`^${s4.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/state\\.safetensors: optimizer\\.0\\.state\\.3\\.exp_avg_sq holds NaN at element 5 of \\[[\\d, ]+\\]; a non-finite training state cannot be continued`));
  // Weights of an explicit checkpoint folder, through the command line (exit 1, the message on stderr).
  const s2 = path.join(run, 'checkpoints', 'step-000002');
  poison(path.join(s2, 'model.safetensors'), 'model.diffusion_model.out.2.weight', 0);
  const err: string[] = [];
  const ce = console.error;
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  let code: number;
  try {
    code = await main(['train', '--resume', s2, '--quiet']);
  } finally {
    console.error = ce;
  }
  assert.equal(code, 1);
  assert.match(err.join('\n'), /^ldm train: .*step-000002\/model\.safetensors: model\.diffusion_model\.out\.2\.weight holds NaN at element 0 of \[3, 32, 3, 3\]; a non-finite training state cannot be continued/);
  e = await nonFinite(trainLDM(quiet([], { resume: s2 })));
  assert.equal(e.step, null);
});

test('a gradient that is infinite while the loss is finite is reported with the parameter name and the element', () => {
  // d sqrt(x) / dx = 1 / (2 sqrt(x)) is +Infinity at 0: sqrt's own backward produces it, the loss is 1.5.
  const w = new Parameter(T.tensor([0.25, 1, 0, 0], [4]));
  const b = new Parameter(T.tensor([1, 2], [2]));
  const loss = T.sum(T.sqrt(w));
  assert.equal(loss.item(), 1.5);
  T.backward(loss);
  const names = new Map<T.Tensor, string>([[w, 'block.weight'], [b, 'block.bias']]);
  assert.throws(() => assertFiniteGradients(7, [b, w], names), (e: unknown) => {
    assert.ok(e instanceof NonFiniteError);
    assert.equal(e.message, 'step 7: the gradient of block.weight: Infinity at element 2 of [4] (2 non-finite values)');
    assert.equal(e.step, 7);
    return true;
  });
  w.grad = T.keep(T.tensor([1, 2, 3, 4], [4]));
  assertFiniteGradients(7, [b, w], names); // finite: no error
});
