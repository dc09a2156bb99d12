// The MNIST classifier: gradients of its pieces, a short training run beats chance by far, save / load / cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { accuracy, crossEntropy, loadClassifier, MnistFeatureNet, saveClassifier, trainClassifier, CLASSIFIER_INFO } from '../../src/metrics/mnist-classifier.js';
import { ensureMnistClassifier, mnistSplit } from '../../src/metrics/mnist.js';

test('maxPool2x2 routes the gradient to the first maximum; cross-entropy matches −log softmax', () => {
  const a = T.requireGrad(T.tensor([1, 3, 2, 0, 3, 1, 5, 5, 0, 0, 4, 4, 9, 8, 7, 6], [1, 1, 4, 4]));
  const y = T.maxPool2x2(a);
  assert.deepEqual(y.toArray(), [3, 5, 9, 7]);
  T.sum(T.mul(y, T.tensor([1, 2, 3, 4], [1, 1, 2, 2]))).backward();
  assert.deepEqual(a.grad!.toArray(), [0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0]);
  const logits = T.tensor([2, 0, 0, 0, 1, 0], [2, 3]);
  const ce = crossEntropy(logits, Int32Array.from([0, 2])).item();
  const expected = -(Math.log(Math.exp(2) / (Math.exp(2) + 2)) + Math.log(1 / (Math.E + 2))) / 2;
  assert.ok(Math.abs(ce - expected) < 1e-6, `${ce} vs ${expected}`);
});

test('a short run on 500 digits reaches well above chance on 300 held-out digits; save, load and cache', () => {
  const { train, heldOut } = mnistSplit();
  const few = { length: 300, get: (i: number) => heldOut.get(i * 3) };
  const lines: string[] = [];
  const { net, info } = trainClassifier(train, few, { epochs: 3, limit: 500, batchSize: 16, log: (s) => lines.push(s) });
  assert.equal(lines.length, 3);
  assert.equal(info.train_examples, 500);
  assert.ok(info.held_out_accuracy > 0.6, `accuracy ${info.held_out_accuracy} (chance is 0.1)`);
  assert.equal(accuracy(net, few), info.held_out_accuracy);
  const x = T.tensor(few.get(0).image, [1, 1, 32, 32]);
  const feats = new MnistFeatureNet(net).features(T.concat([x, x], 0));
  assert.equal(feats.length, 256);
  assert.ok(feats.every((v) => v >= 0) && feats.some((v) => v > 0), 'ReLU features');
  assert.throws(() => net.features(T.zeros([1, 1, 28, 28])), /32, 32/);

  const dir = mkdtempSync(path.join(tmpdir(), 'ldm-classifier-'));
  try {
    assert.equal(loadClassifier(dir), null);
    const data = { dataset: 'mnist', split_seed: 0, held_out: 1000 };
    saveClassifier(dir, net, { ...info, data });
    const back = loadClassifier(dir)!;
    assert.deepEqual(new MnistFeatureNet(back.net).features(x), new MnistFeatureNet(net).features(x));
    // ensureMnistClassifier reuses it for the same split (no training: it returns at once).
    const t0 = Date.now();
    const cached = ensureMnistClassifier(dir, {});
    assert.equal(cached.trained, false);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(cached.info.held_out_accuracy, info.held_out_accuracy);
    writeFileSync(path.join(dir, CLASSIFIER_INFO), JSON.stringify({ ...info, arch: 'other' }));
    assert.throws(() => loadClassifier(dir), /architecture "other"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
