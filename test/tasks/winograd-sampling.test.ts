// Winograd F(4×4, 3×3) convolutions through a whole sampling run: 50 DDIM steps with guidance on the embedded
// MNIST model (its UNet's 3×3 convolutions at 8×8 and 4×4 latents for a batch of 2 × 16, and the decoder's at up
// to 32×32, all take the Winograd path) give the direct path's pictures to within one grey level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { nativeAvailable } from '../../src/engine/kernels/native.js';
import { loadModel } from '../../src/loader/model.js';
import { sample } from '../../src/tasks/index.js';

const skip = nativeAvailable() ? false : 'the Winograd path is a native kernel';

function withWinograd<R>(mode: '0' | '1', body: () => R): R {
  const before = process.env.LDM_WINOGRAD;
  process.env.LDM_WINOGRAD = mode;
  try {
    return body();
  } finally {
    if (before === undefined) delete process.env.LDM_WINOGRAD;
    else process.env.LDM_WINOGRAD = before;
  }
}

test('50-step guided DDIM sampling with Winograd convolutions equals the direct path to one grey level', { skip }, () => {
  // The sampling batch's 3×3 convolution rounds differently on the two paths (the Winograd path is taken).
  const gen = new T.Generator(4);
  const x = T.randn([32, 64, 8, 8], gen), w = T.randn([64, 64, 3, 3], gen);
  const [cw, cd] = (['1', '0'] as const).map((mode) => withWinograd(mode, () => Float32Array.from(T.contiguousData(T.conv2d(x, w, null, { padding: 1 })))));
  assert.ok(cw.some((v, i) => v !== cd[i]), 'the two paths computed the same bits: Winograd was not used');

  const m = loadModel();
  const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5];
  const [a, b] = (['0', '1'] as const).map((mode) => withWinograd(mode, () => sample(m, { classLabel: labels, steps: 50, seed: 5 }).images));
  let max = 0, differ = 0, n = 0;
  a.forEach((im, k) => im.data.forEach((v, i) => {
    const d = Math.abs(v - b[k].data[i]);
    max = Math.max(max, d);
    if (d) differ++;
    n++;
  }));
  console.log(`winograd vs direct after 50 steps: ${differ} of ${n} pixels differ, by at most ${max}`);
  assert.ok(max <= 1, `a pixel differs by ${max} grey levels`);
  assert.ok(differ <= n / 1000, `${differ} of ${n} pixels differ`);
});
