// Parity of the UNet with the reference fixtures (computed by the original code): build from the
// fixture's config.yaml, load weights.safetensors, run on io.safetensors' inputs, compare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/engine/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { timestepEmbedding, UNetModel } from '../../src/models/unet/index.js';
import { buildFromConfigFile } from '../../src/loader/targets.js';
import { assertClose } from '../helpers/gradcheck.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const golden = resolve(repoRoot, '../shared/golden');

function relL2(a: number[], b: number[]): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

for (const name of ['unet_crossattn', 'unet_class_scaleshift']) {
  const dir = join(golden, name);
  test(`UNet parity with the reference: ${name}`, { skip: existsSync(dir) ? false : `fixtures not found at ${dir} (shared/golden is absent)` }, () => {
    const model = buildFromConfigFile<UNetModel>(join(dir, 'config.yaml'), { gen: new T.Generator(0) }).eval();
    assert.ok(model instanceof UNetModel);
    const report = model.loadStateDict(readSafetensors(join(dir, 'weights.safetensors')).tensors, { source: `${name}/weights.safetensors` });
    assert.equal(report.missing.length + report.unexpected.length + report.mismatched.length, 0);
    const io = readSafetensors(join(dir, 'io.safetensors')).tensors;
    const out = T.noGrad(() => model.forward(io.get('x')!, io.get('t')!, io.get('context') ?? null, io.get('y') ?? null));
    const ref = io.get('out')!;
    assert.deepEqual(out.shape, ref.shape);
    const err = relL2(out.toArray(), ref.toArray());
    console.log(`${name}: rel-L2 error ${err.toExponential(3)}`);
    assert.ok(err <= 1e-4, `${name}: relative L2 error ${err.toExponential(3)} > 1e-4`);
  });
}

test('timestep embedding: [cos, sin], exp(−ln(1e4)·i/half), odd dims zero-padded (reference values)', () => {
  const e = timestepEmbedding(T.tensor([1], [1], 'int64'), 8).toArray();
  assertClose(e, [0.5403023, 0.9950042, 0.99995, 0.9999995, 0.84147098, 0.09983342, 0.00999983, 0.001], 1e-6, 'dim 8, t=1');
  const odd = timestepEmbedding(T.tensor([3, 0], [2], 'int32'), 5);
  assert.deepEqual(odd.shape, [2, 5]);
  assert.equal(odd.toArray()[4], 0);
  assert.equal(odd.toArray()[9], 0);
  assert.deepEqual(odd.toArray().slice(5), [1, 1, 0, 0, 0]);
  const dir = join(golden, 'schedules');
  if (!existsSync(dir)) return;
  const io = readSafetensors(join(dir, 'io.safetensors')).tensors;
  for (const dim of [64, 33]) {
    const ref = io.get(`timestep_embedding.dim${dim}`)!;
    const got = timestepEmbedding(io.get('timestep_embedding.t')!, dim);
    assert.deepEqual(got.shape, ref.shape);
    assertClose(got.toArray(), ref.toArray(), 1e-6, `timestep_embedding dim ${dim}`);
  }
});
