// ldm train-autoencoder (trainAutoencoder) on a handful of MNIST digits: the reconstruction loss falls, the
// LPIPS notice, reconstruction grids, and a resumed run (across disc_start) identical to an uninterrupted one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { readMetrics } from '../../src/train/logger.js';
import { trainAutoencoder } from '../../src/train/train-autoencoder.js';
import { aeConfig, assertSameTensors, quiet, tensorBytes, tmpRoot, writeConfig } from './trainer-helpers.js';

const root = tmpRoot();

test('ldm train-autoencoder: the reconstruction loss falls on 4 digits; one LPIPS notice; inputs vs reconstructions grid', async () => {
  const cfg = writeConfig(root, 'ae', aeConfig({ steps: 30, train: 4, batch: 2, discStart: 1000, lr: 5e-4 }));
  const lines: string[] = [];
  const r = await trainAutoencoder(quiet(lines, { config: [cfg], logdir: path.join(root, 'logs'), imageEvery: 30 }));
  const rec = r.records.map((x) => x['train/rec_loss']);
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const first = mean(rec.slice(0, 5)), last = mean(rec.slice(-5));
  console.log(`autoencoder rec_loss: first 5 steps ${first.toFixed(4)}, last 5 ${last.toFixed(4)}`);
  assert.ok(last < 0.6 * first, `rec_loss did not fall: ${first} → ${last}`);
  assert.equal(lines.filter((l) => /no LPIPS weights supplied/.test(l)).length, 1, lines.join('\n'));
  assert.ok(lines.some((l) => /^Setting learning rate to 1\.00e-3 = 1 \(accumulate_grad_batches\) \* 1 \(num_gpus\) \* 2 \(batchsize\) \* 5\.00e-4 \(base_lr\)$/.test(l)), lines.join('\n'));
  assert.deepEqual(readdirSync(path.join(r.runDir, 'images')), ['reconstructions_gs-000030.png']);
  for (const k of ['train/kl_loss', 'train/nll_loss', 'train/d_weight', 'train/disc_loss', 'train/g_loss', 'lr_abs']) assert.equal(typeof r.records[0][k], 'number', k);
  // The random LPIPS network is not saved (perceptual weight 0 without weights); the discriminator is.
  const w = tensorBytes(path.join(r.runDir, 'checkpoints', 'last', 'model.safetensors'));
  assert.ok(![...w.keys()].some((k) => k.startsWith('loss.perceptual_loss.')));
  assert.ok(w.has('loss.discriminator.main.0.weight') && w.has('decoder.conv_out.weight') && w.has('loss.logvar'));
});

test('ldm train-autoencoder: 6 steps straight = 3, stop, --resume <run folder>, 3 more (across disc_start)', async () => {
  const cfg = writeConfig(root, 'aeres', aeConfig({ steps: 6, train: 6, batch: 2, discStart: 4 }));
  const logdir = path.join(root, 'logs-resume');
  const a = await trainAutoencoder(quiet([], { config: [cfg], logdir, name: 'straight' }));
  const b1 = await trainAutoencoder(quiet([], { config: [cfg], logdir, name: 'halves', stopAfter: 3 }));
  const b2 = await trainAutoencoder(quiet([], { resume: b1.runDir, logdir }));
  assert.equal(b2.globalStep, 6);
  const la = readMetrics(path.join(a.runDir, 'metrics.jsonl')), lb = readMetrics(path.join(b2.runDir, 'metrics.jsonl'));
  assert.equal(la.length, 6);
  assert.ok(la[5]['train/disc_factor'] === 1 && la[0]['train/disc_factor'] === 0);
  assert.deepEqual(lb, la);
  assertSameTensors(tensorBytes(path.join(a.runDir, 'checkpoints', 'last', 'model.safetensors')), tensorBytes(path.join(b2.runDir, 'checkpoints', 'last', 'model.safetensors')), 'final weights');
  assertSameTensors(tensorBytes(path.join(a.runDir, 'checkpoints', 'last', 'state.safetensors')), tensorBytes(path.join(b2.runDir, 'checkpoints', 'last', 'state.safetensors')), 'optimizer state');
});
