// The models shipped in models/: each is listed with what it can do, loads without any other file (no
// ckpt_path to a training run), and samples what its model.json says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaultModelName, listModels, modelsDir } from '../../src/loader/embedded.js';
import { loadModel } from '../../src/loader/model.js';
import { modelTask, sample } from '../../src/tasks/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('embedded models: the package ships the MNIST model as the default, ≤ 25 MB, self-contained', () => {
  assert.equal(modelsDir(), path.join(repo, 'models'));
  const ms = listModels();
  assert.ok(ms.some((m) => m.name === 'mnist'), `models/ has ${ms.map((m) => m.name).join(', ') || 'nothing'}`);
  assert.equal(defaultModelName(), 'mnist');
  let bytes = 0;
  for (const m of ms) {
    bytes += statSync(m.weights).size + statSync(m.config).size;
    const cfg = JSON.stringify(parse(readFileSync(m.config, 'utf8')));
    assert.doesNotMatch(cfg, /ckpt_path/, `${m.config} points at no other file`);
  }
  assert.ok(bytes <= 25 * 2 ** 20, `embedded models: ${(bytes / 2 ** 20).toFixed(1)} MB`);
});

test('embedded MNIST model: loads by name, is the class-conditional model model.json describes, samples 32×32 digits', () => {
  const m = loadModel();
  assert.equal(m.name, 'mnist');
  assert.equal(m.report.missing.length + m.report.unexpected.length + m.report.mismatched.length, 0);
  assert.equal(modelTask(m.model), m.info!.task);
  assert.equal(m.info!.classes, 10);
  assert.deepEqual(m.info!.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  const r = sample(m, { classLabel: [3, 7], steps: 4, seed: 1 });
  assert.deepEqual(r.perImage, [{ seed: 1, classLabel: 3 }, { seed: 2, classLabel: 7 }]);
  assert.equal(r.params.scale, m.info!.defaults!.scale, "model.json's guidance scale is the default");
  for (const im of r.images) {
    assert.equal(im.width, m.info!.imageSize);
    assert.equal(im.channels, 1);
    const mean = im.data.reduce((a, v) => a + v, 0) / im.data.length;
    assert.ok(mean > 5 && mean < 128, `a digit is light strokes on a dark ground (mean ${mean.toFixed(1)})`);
  }
});
