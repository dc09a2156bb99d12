// Winograd F(4×4, 3×3) convolutions through a whole sampling run: 50 DDIM steps of a latent UNet with random
// weights (model_channels 64, 64×64 latents: its ResBlocks' 3×3 convolutions take the Winograd path) end within
// the golden fixtures' sampler tolerance (relative L2 ≤ 1e-3) of the same run on the direct path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { nativeAvailable } from '../../src/engine/kernels/native.js';
import { registerSchedule } from '../../src/diffusion/schedules.js';
import { ddimSample } from '../../src/diffusion/samplers/ddim.js';
import { unetFromParams } from '../../src/models/unet/index.js';

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

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

test('50-step DDIM sampling with Winograd convolutions stays within 1e-3 of the direct path', { skip }, () => {
  const gen = new T.Generator(21);
  const model = unetFromParams({
    image_size: 64, in_channels: 4, out_channels: 4, model_channels: 64, attention_resolutions: [], num_res_blocks: 1,
    channel_mult: [1], num_heads: 1,
  }).eval();
  // Random weights throughout (a fresh UNet zeroes its blocks' last convolutions and its output layer).
  for (const p of model.parameters()) {
    const r = T.mul(T.randn([...p.shape], gen), 1 / Math.sqrt(Math.max(1, p.size / p.shape[0])));
    (p.data as Float32Array).set(T.contiguousData(r) as Float32Array, p.offset);
  }
  const ac = registerSchedule({ linear_start: 0.00085, linear_end: 0.012 }).alphas_cumprod;
  const xT = T.keep(T.randn([1, 4, 64, 64], gen));
  const run = (mode: '0' | '1') => withWinograd(mode, () => {
    const r = ddimSample((x, t) => model.forward(x, T.full([x.shape[0]], t)), ac, { xT, steps: 50 });
    return { x: Float32Array.from(T.contiguousData(r.x) as Float32Array), first: Float32Array.from(T.contiguousData(T.noGrad(() => model.forward(xT, T.full([1], 999)))) as Float32Array) };
  });
  const direct = run('0'), wg = run('1');
  assert.ok(wg.first.some((v, i) => v !== direct.first[i]), 'one UNet forward computed the same bits on both paths: Winograd was not used');
  const one = relL2(wg.first, direct.first), end = relL2(wg.x, direct.x);
  console.log(`winograd vs direct: one UNet forward rel L2 ${one.toExponential(2)}, after 50 DDIM steps ${end.toExponential(2)}`);
  assert.ok(one <= 1e-4, `one forward: ${one}`);
  assert.ok(end <= 1e-3, `after 50 steps: ${end}`);
});
