// The FID Inception-v3: architecture (keys and shapes of pt_inception-2015-12-05), pooling semantics, a
// forward on random weights, weight loading with key checking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { FidInceptionV3, InceptionFeatureNet, fidInceptionInput, loadFidInceptionWeights } from '../../src/metrics/inception.js';
import { avgPool2dExcludePad, maxPool2d } from '../../src/metrics/pool.js';

test('pooling: TF-style average pool ignores the padding, max pool never picks it', () => {
  const ones = T.ones([1, 1, 3, 3]);
  assert.deepEqual(avgPool2dExcludePad(ones, 3, 1, 1).toArray(), new Array(9).fill(1)); // count_include_pad=True would give 4/9 at corners
  const x = T.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  assert.deepEqual(avgPool2dExcludePad(x, 3, 1, 1).toArray(), [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
  const neg = T.tensor([-1, -2, -3, -4, -5, -6, -7, -8, -9], [1, 1, 3, 3]);
  assert.deepEqual(maxPool2d(neg, 3, 1, 1).toArray(), [-1, -1, -2, -1, -1, -2, -4, -4, -5]);
  // 3×3 stride 2, no padding: 7×7 → 3×3 windows at 0, 2, 4.
  const r = T.arange(0, 49).reshape([1, 1, 7, 7]);
  assert.deepEqual(maxPool2d(r, 3, 2).toArray(), [16, 18, 20, 30, 32, 34, 44, 46, 48]);
});

test('architecture: 94 BasicConv2d blocks, 470 weight tensors (+94 num_batches_tracked) with the pt_inception shapes', () => {
  const net = T.noGrad(() => new FidInceptionV3({ gen: new T.Generator(0) }));
  const sd = net.stateDict();
  const keys = [...sd.keys()];
  assert.equal(keys.filter((k) => k.endsWith('.conv.weight')).length, 94);
  assert.equal(keys.filter((k) => !k.endsWith('.num_batches_tracked')).length, 470);
  assert.equal(sd.size, 564);
  assert.equal(net.numParameters(), 21_785_568);
  const shape = (k: string) => [...sd.get(k)!.shape];
  assert.deepEqual(shape('Conv2d_1a_3x3.conv.weight'), [32, 3, 3, 3]);
  assert.deepEqual(shape('Conv2d_4a_3x3.bn.running_var'), [192]);
  assert.deepEqual(shape('Mixed_5b.branch_pool.conv.weight'), [32, 192, 1, 1]);
  assert.deepEqual(shape('Mixed_5d.branch5x5_2.conv.weight'), [64, 48, 5, 5]);
  assert.deepEqual(shape('Mixed_6a.branch3x3.conv.weight'), [384, 288, 3, 3]);
  assert.deepEqual(shape('Mixed_6b.branch7x7_2.conv.weight'), [128, 128, 1, 7]);
  assert.deepEqual(shape('Mixed_6e.branch7x7dbl_4.conv.weight'), [192, 192, 7, 1]);
  assert.deepEqual(shape('Mixed_7a.branch3x3_2.conv.weight'), [320, 192, 3, 3]);
  assert.deepEqual(shape('Mixed_7b.branch3x3dbl_1.conv.weight'), [448, 1280, 1, 1]);
  assert.deepEqual(shape('Mixed_7c.branch3x3_2b.conv.weight'), [384, 384, 3, 1]);
  assert.deepEqual(shape('Mixed_7c.branch_pool.conv.weight'), [192, 2048, 1, 1]);
  assert.equal(keys[0], 'Conv2d_1a_3x3.conv.weight');
  assert.equal(keys[keys.length - 1], 'Mixed_7c.branch_pool.bn.num_batches_tracked');
});

test('input path: [-1, 1] gray 32×32 → RGB 299×299 in [-1, 1]', () => {
  const x = T.full([2, 1, 32, 32], 0.5);
  const y = fidInceptionInput(x);
  assert.deepEqual(y.shape, [2, 3, 299, 299]);
  assert.ok(y.toArray().every((v) => Math.abs(v - 0.5) < 1e-6));
  assert.throws(() => fidInceptionInput(T.zeros([1, 2, 8, 8])), /1 or 3/);
});

test('forward on random weights: [2, 2048], finite, deterministic; weights round-trip through a file with key checking', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ldm-inception-'));
  try {
    const a = new InceptionFeatureNet(null, { gen: new T.Generator(1) });
    // Non-trivial BatchNorm statistics so the features are not vanishingly small.
    for (const [k, t] of a.net.stateDict()) {
      if (k.endsWith('running_var')) (t.data as Float32Array).fill(0.05);
      if (k.endsWith('bn.bias')) (t.data as Float32Array).fill(0.01);
    }
    const x = T.rand([2, 3, 40, 36], new T.Generator(2), -1, 1);
    const f1 = a.features(x);
    assert.equal(f1.length, 2 * 2048);
    assert.ok(f1.every(Number.isFinite));
    assert.ok(f1.some((v) => v > 0), 'some features are positive');
    // The two images give different features.
    assert.ok(f1.subarray(0, 2048).some((v, i) => v !== f1[2048 + i]));
    // Save under the file's key names (+ the 1008-way fc, which is ignored), load into a fresh net.
    const sd = new Map(a.net.stateDict());
    sd.set('fc.weight', T.zeros([1008, 2048]));
    sd.set('fc.bias', T.zeros([1008]));
    const file = path.join(dir, 'inception.safetensors');
    writeSafetensors(file, sd);
    const b = new InceptionFeatureNet(file, { gen: new T.Generator(9) });
    assert.deepEqual(b.features(x), f1); // the same weights give the same features (deterministic)
    // Missing or foreign keys and wrong shapes are named.
    const missing = new Map(sd);
    missing.delete('Mixed_6c.branch7x7_3.conv.weight');
    writeSafetensors(file, missing);
    assert.throws(() => loadFidInceptionWeights(new FidInceptionV3(), file), /missing key\(s\): Mixed_6c\.branch7x7_3\.conv\.weight/);
    const extra = new Map(sd);
    extra.set('AuxLogits.fc.weight', T.zeros([1000, 768]));
    extra.set('Mixed_5b.branch1x1.conv.weight', T.zeros([64, 192, 3, 3]));
    writeSafetensors(file, extra);
    assert.throws(() => loadFidInceptionWeights(new FidInceptionV3(), file), (e: Error) => /unexpected key\(s\): AuxLogits\.fc\.weight/.test(e.message) && /Mixed_5b\.branch1x1\.conv\.weight: file \[64,192,3,3\], expected \[64,192,1,1\]/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
