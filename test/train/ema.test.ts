import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { Module, Parameter } from '../../src/nn/index.js';
import { LitEma } from '../../src/train/ema.js';

class Net extends Module {
  a = new Parameter(T.tensor([1, 2], [2]));
  frozen = new Parameter(T.tensor([5], [1]));
  sub = new (class extends Module {
    w = new Parameter(T.tensor([10, -10], [2]));
  })();
  constructor() {
    super();
    this.frozen.requiresGrad = false;
  }
}

const set = (p: T.Tensor, v: number[]) => (p.data as Float32Array).set(v, p.offset);

test('LitEma: shadow names without dots, warm-up decay min(decay, (1+n)/(10+n)) in float32', () => {
  const net = new Net();
  const ema = new LitEma(net);
  assert.deepEqual([...ema.stateDict().keys()], ['model_ema.decay', 'model_ema.num_updates', 'model_ema.a', 'model_ema.subw']);
  set(net.a, [3, 4]);
  ema.update(net);
  // n = 1: d = 2/11, 1 − d = 9/11 (float32); shadow = 1 − (9/11)(1 − 3)
  const om = Math.fround(1 - Math.fround(2 / 11));
  assert.equal(ema.numUpdatesValue, 1);
  assert.equal(ema.shadows.get('a')!.toArray()[0], Math.fround(1 - Math.fround(om * -2)));
  assert.deepEqual(ema.shadows.get('subw')!.toArray(), [10, -10]);
  // after many updates the decay is capped at 0.9999
  (ema.numUpdates.data as Int32Array)[0] = 100000;
  set(net.a, [1003, 4]);
  const before = ema.shadows.get('a')!.toArray()[0];
  ema.update(net);
  const cap = Math.fround(1 - Math.fround(0.9999));
  assert.equal(ema.shadows.get('a')!.toArray()[0], Math.fround(before - Math.fround(cap * Math.fround(before - 1003))));
});

test('LitEma: fixed decay (num_updates −1), copyTo / store / restore, state round trip', () => {
  const net = new Net();
  const ema = new LitEma(net, { decay: 0.5, useNumUpdates: false });
  assert.equal(ema.numUpdatesValue, -1);
  set(net.a, [3, 6]);
  ema.update(net);
  assert.deepEqual(ema.shadows.get('a')!.toArray(), [2, 4]);
  assert.equal(ema.numUpdatesValue, -1);
  ema.store(net.parameters());
  ema.copyTo(net);
  assert.deepEqual(net.a.toArray(), [2, 4]);
  assert.deepEqual(net.frozen.toArray(), [5]);
  ema.restore(net.parameters());
  assert.deepEqual(net.a.toArray(), [3, 6]);

  const other = new LitEma(new Net(), { decay: 0.5, useNumUpdates: false });
  other.loadStateDict(ema.stateDict());
  assert.deepEqual(other.shadows.get('a')!.toArray(), [2, 4]);
  const bad = new Map(ema.stateDict());
  bad.delete('model_ema.subw');
  assert.throws(() => other.loadStateDict(bad, 'model_ema.', 'x.ckpt'), /x\.ckpt.*1 missing \(model_ema\.subw\)/);
  assert.throws(() => new LitEma(net, { decay: 1.5 }), /between 0 and 1/);
  net.a.requiresGrad = false;
  assert.throws(() => ema.update(net), /a has a shadow but no longer requires grad/);
});

test('LitEma over LatentDiffusion.model: the state dict holds exactly the model_ema.* keys of a reference checkpoint', async (t) => {
  const dir = path.resolve(import.meta.dirname, '../..', '../shared/golden/ldm_ddim_cfg');
  if (!existsSync(dir)) {
    t.skip(`golden fixtures not found at ${dir}`);
    return;
  }
  const { buildFromConfigFile } = await import('../../src/loader/targets.js');
  const { LatentDiffusion } = await import('../../src/diffusion/latent-diffusion.js');
  const { readSafetensors } = await import('../../src/io/safetensors.js');
  const m = buildFromConfigFile<InstanceType<typeof LatentDiffusion>>(path.join(dir, 'config.yaml'));
  const ema = new LitEma(m.model);
  const ref = readSafetensors(path.join(dir, 'weights.safetensors')).tensors;
  const refKeys = [...ref.keys()].filter((k) => k.startsWith('model_ema.')).sort();
  assert.deepEqual([...ema.stateDict().keys()].sort(), refKeys);
  ema.loadStateDict(ref);
  assert.equal(ema.stateDict().get('model_ema.decay')!.item(), ref.get('model_ema.decay')!.item());
  assert.deepEqual(ema.shadows.get('diffusion_modelinput_blocks00bias')!.toArray(), ref.get('model_ema.diffusion_modelinput_blocks00bias')!.toArray());
});
