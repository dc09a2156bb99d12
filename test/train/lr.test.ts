import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { Adam } from '../../src/nn/optim.js';
import { buildLrScheduler, LambdaLR } from '../../src/train/lr-schedulers.js';

test('LambdaWarmUpCosineScheduler: linear warm-up, cosine decay, floor (hand values)', () => {
  const s = buildLrScheduler({ target: 'ldm.lr_scheduler.LambdaWarmUpCosineScheduler', params: { warm_up_steps: 10, lr_min: 0.1, lr_max: 1, lr_start: 0, max_decay_steps: 20, verbosity_interval: 0 } });
  assert.equal(s.schedule(0), 0);
  assert.equal(s.schedule(5), 0.5);
  assert.equal(s.schedule(10), 1);
  assert.ok(Math.abs(s.schedule(15) - 0.55) < 1e-15);
  assert.equal(s.schedule(20), 0.1);
  assert.equal(s.schedule(1000), 0.1);
});

test('LambdaLinearScheduler: cycles restart the warm-up; past the last cycle is an error', () => {
  const s = buildLrScheduler({ target: 'ldm.lr_scheduler.LambdaLinearScheduler', params: { warm_up_steps: [2, 1], f_start: [0, 0.5], f_max: [1, 1], f_min: [0, 0.5], cycle_lengths: [4, 2] } });
  assert.deepEqual([0, 1, 2, 3, 4].map((n) => s.schedule(n)), [0, 0.5, 0.5, 0.25, 0]);
  // step 5 is n = 1 in cycle 1 (cum_cycles [0, 4, 6]): past warm-up, f = 0.5 + 0.5·(2 − 1)/2
  assert.equal(s.schedule(5), 0.75);
  assert.equal(s.lastStep, 6);
  assert.throws(() => s.schedule(7), /step 7 is past the last cycle/);
});

test('buildLrScheduler: unknown target, unknown or missing params, mismatched lists', () => {
  assert.throws(() => buildLrScheduler({ target: 'torch.optim.lr_scheduler.StepLR', params: {} }, 'model.params.scheduler_config'), /model\.params\.scheduler_config\.target: unknown learning-rate scheduler/);
  assert.throws(() => buildLrScheduler({ target: 'ldm.lr_scheduler.LambdaWarmUpCosineScheduler', params: { warm_up_steps: 1, lr_min: 0, lr_max: 1, lr_start: 0, max_decay_steps: 5, gamma: 2 } }, 'sc'), /unknown parameter sc\.params\.gamma/);
  assert.throws(() => buildLrScheduler({ target: 'ldm.lr_scheduler.LambdaWarmUpCosineScheduler', params: { warm_up_steps: 1 } }, 'sc'), /sc\.params\.lr_min: required number is missing/);
  assert.throws(() => buildLrScheduler({ target: 'ldm.lr_scheduler.LambdaLinearScheduler', params: { warm_up_steps: [1, 2], f_start: [0], f_max: [1], f_min: [0], cycle_lengths: [3] } }, 'sc'), /sc\.params: .*every list must have 2 entries/);
});

test('LambdaLR: lr = base · f(step), set at construction and after each step; state round trip', () => {
  const s = buildLrScheduler({ target: 'LambdaLinearScheduler', params: { warm_up_steps: [2], f_start: [0.5], f_max: [1], f_min: [0], cycle_lengths: [10] } });
  const opt = new Adam([T.keep(T.zeros([1]))], { lr: 0.1 });
  const l = new LambdaLR(opt, s);
  assert.equal(opt.lr, 0.05);
  l.step();
  assert.equal(opt.lr, 0.1 * 0.75);
  l.step();
  assert.equal(opt.lr, 0.1 * 0.8);
  const opt2 = new Adam([T.keep(T.zeros([1]))], { lr: 0.1 });
  const l2 = new LambdaLR(opt2, s);
  l2.loadStateDict(l.stateDict());
  assert.equal(opt2.lr, opt.lr);
});
