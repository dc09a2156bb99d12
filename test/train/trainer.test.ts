// ldm train (trainLDM) on a handful of MNIST digits: the loss falls, the run folder is laid out like the
// reference's, the last K checkpoints are kept, and a run stopped halfway and resumed gives the same losses
// and the same final weights, bit for bit, as an uninterrupted one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { readMetrics } from '../../src/train/logger.js';
import { trainLDM } from '../../src/train/train-ldm.js';
import { assertSameTensors, ldmConfig, quiet, tensorBytes, tmpRoot, writeConfig } from './trainer-helpers.js';

const root = tmpRoot();

test('ldm train: the loss falls on 8 digits; run folder, JSONL, loss curve, grids and the last K checkpoints', async () => {
  const cfg = writeConfig(root, 'falls', ldmConfig({ steps: 40, lr: 5e-4, train: 8, batch: 4 }));
  const lines: string[] = [];
  const r = await trainLDM(quiet(lines, { config: [cfg], logdir: path.join(root, 'logs'), name: 'falls', ckptEvery: 10, keepLast: 2, imageEvery: 20, scaleLr: false }));
  assert.equal(r.globalStep, 40);
  const loss = r.records.map((x) => x['train/loss']);
  assert.equal(loss.length, 40);
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const first = mean(loss.slice(0, 10)), last = mean(loss.slice(-10));
  console.log(`ldm loss: first 10 steps ${first.toFixed(4)}, last 10 ${last.toFixed(4)}`);
  assert.ok(last < 0.75 * first, `loss did not fall: ${first} → ${last}`);
  // Printouts: main.py's LR line (no scaling asked), the scale_by_std value, the first-stage notice.
  assert.ok(lines.some((l) => /NOT USING LR SCALING/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^Setting learning rate to 5\.00e-4$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /scale_by_std: scale_factor = /.test(l)));
  assert.ok(lines.some((l) => /first_stage_config\.params\.ckpt_path is not set/.test(l)));
  // Layout: logs/<time>_falls/{checkpoints, configs, images}, metrics.jsonl, loss.svg.
  assert.match(path.basename(r.runDir), /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_falls$/);
  const ck = path.join(r.runDir, 'checkpoints');
  assert.deepEqual(readdirSync(ck).sort(), ['last', 'step-000030', 'step-000040']);
  assert.equal(readlinkSync(path.join(ck, 'last')), 'step-000040');
  assert.deepEqual(readdirSync(path.join(ck, 'step-000040')).sort(), ['config.yaml', 'model.safetensors', 'state.safetensors']);
  const configs = readdirSync(path.join(r.runDir, 'configs')).sort();
  assert.equal(configs.length, 2);
  assert.match(configs[0], /-lightning\.yaml$/);
  assert.match(configs[1], /-project\.yaml$/);
  const project = parse(readFileSync(path.join(r.runDir, 'configs', configs[1]), 'utf8'));
  assert.equal(project.model.target, 'ldm.models.diffusion.ddpm.LatentDiffusion');
  assert.equal(project.lightning, undefined);
  assert.deepEqual(readdirSync(path.join(r.runDir, 'images')).sort(), ['samples_gs-000020.png', 'samples_gs-000040.png']);
  assert.match(readFileSync(path.join(r.runDir, 'loss.svg'), 'utf8'), /^<svg [^>]*>.*train\/loss.*<\/svg>\n$/s);
  const recs = readMetrics(path.join(r.runDir, 'metrics.jsonl'));
  assert.deepEqual(recs.map((x) => x.step), Array.from({ length: 40 }, (_, i) => i + 1));
  for (const k of ['train/loss', 'train/loss_simple', 'train/loss_vlb', 'grad_norm', 'lr_abs', 'epoch']) assert.equal(typeof recs[0][k], 'number', k);
  // Weights under the reference's names, with the EMA and the scale factor.
  const w = tensorBytes(path.join(ck, 'step-000040', 'model.safetensors'));
  for (const k of ['scale_factor', 'model_ema.decay', 'model_ema.num_updates', 'model.diffusion_model.out.2.weight', 'model_ema.diffusion_modelout2weight', 'first_stage_model.decoder.conv_out.weight', 'cond_stage_model.embedding.weight']) {
    assert.ok(w.has(k), k);
  }
});

test('ldm train: 8 steps straight = 4 steps, stop, --resume, 4 more (every loss and every final weight identical)', async () => {
  const cfg = writeConfig(root, 'res', ldmConfig({ steps: 8, train: 12, batch: 4, accumulate: 2, clip: 0.5 }));
  const logdir = path.join(root, 'logs-resume');
  const a = await trainLDM(quiet([], { config: [cfg], logdir, name: 'straight' }));
  const b1 = await trainLDM(quiet([], { config: [cfg], logdir, name: 'halves', stopAfter: 4 }));
  assert.equal(b1.globalStep, 4);
  assert.ok(existsSync(path.join(b1.runDir, 'checkpoints', 'step-000004')));
  const lines: string[] = [];
  const b2 = await trainLDM(quiet(lines, { resume: 'latest', name: 'halves', logdir }));
  assert.equal(b2.runDir, b1.runDir);
  assert.ok(lines.some((l) => /resuming .* from step-000004 \(step 4, epoch \d+\)/.test(l)), lines.join('\n'));
  assert.equal(b2.globalStep, 8);
  const la = readMetrics(path.join(a.runDir, 'metrics.jsonl')), lb = readMetrics(path.join(b2.runDir, 'metrics.jsonl'));
  assert.equal(la.length, 8);
  assert.deepEqual(lb, la); // every logged value (losses, grad norm, lr, epoch) of every step
  const n = assertSameTensors(tensorBytes(path.join(a.runDir, 'checkpoints', 'last', 'model.safetensors')), tensorBytes(path.join(b2.runDir, 'checkpoints', 'last', 'model.safetensors')), 'final weights');
  assert.ok(n > 100);
  assertSameTensors(tensorBytes(path.join(a.runDir, 'checkpoints', 'last', 'state.safetensors')), tensorBytes(path.join(b2.runDir, 'checkpoints', 'last', 'state.safetensors')), 'optimizer state');
});
