import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { assertClose, gradcheck, rnd } from '../helpers/gradcheck.js';

/** Group norm composed from reductions and elementwise ops (independent of the kernel). */
function groupNormRef(x: T.Tensor, G: number, w: T.Tensor | null, b: T.Tensor | null, eps: number): T.Tensor {
  const [N, C] = x.shape;
  const xg = T.reshape(x, [N, G, -1]);
  const m = T.mean(xg, 2, true), v = T.variance(xg, 2, true);
  let y = T.reshape(T.div(T.sub(xg, m), T.sqrt(T.add(v, eps))), x.shape);
  const bs = x.shape.map((s, i) => (i === 1 ? C : 1));
  if (w) y = T.mul(y, T.reshape(w, bs));
  if (b) y = T.add(y, T.reshape(b, bs));
  return y;
}

test('groupNorm: forward matches the composed formula (4-D, 3-D, fused SiLU, no affine)', () => {
  const x = rnd([2, 6, 3, 5], 1), w = rnd([6], 2), b = rnd([6], 3);
  assertClose(T.groupNorm(x, 3, w, b, 1e-5).toArray(), groupNormRef(x, 3, w, b, 1e-5).toArray(), 1e-13, 'gn');
  assertClose(T.groupNorm(x, 3, w, b, 1e-5, true).toArray(), T.silu(groupNormRef(x, 3, w, b, 1e-5)).toArray(), 1e-13, 'gn silu');
  assertClose(T.groupNorm(x, 6, null, null, 1e-6).toArray(), groupNormRef(x, 6, null, null, 1e-6).toArray(), 1e-13, 'gn no affine');
  const x3 = rnd([3, 4, 7], 4);
  assertClose(T.groupNorm(x3, 2, w.slice(0, 0, 4), null, 0.1).toArray(), groupNormRef(x3, 2, w.slice(0, 0, 4), null, 0.1).toArray(), 1e-13, 'gn 3d');
  // Hand-computed: one group of [0, 2] → mean 1, var 1 → [-1, 1]/√(1 + eps).
  const h = T.groupNorm(T.tensor([[[0], [2]]], undefined, 'float64'), 1, null, null, 0).toArray();
  assert.deepEqual(h, [-1, 1]);
});

test('groupNorm: float32 statistics stay accurate for inputs with a large mean', () => {
  // 1000 + N(0, 1): a one-pass float32 E[x²] − E[x]² would lose ~all digits of the variance.
  const x32 = T.cast(T.addScalar(rnd([2, 8, 16, 16], 5), 1000), 'float32');
  const x64 = T.cast(x32, 'float64');
  const y32 = T.groupNorm(x32, 4, null, null, 1e-6).toArray();
  const y64 = T.groupNorm(x64, 4, null, null, 1e-6).toArray();
  assertClose(y32, y64, 2e-5, 'float32 vs float64 group norm');
});

test('groupNorm: gradients match finite differences', () => {
  const x = rnd([2, 4, 3, 3], 6), w = rnd([4], 7), b = rnd([4], 8);
  gradcheck('groupNorm', (t, g, c) => T.groupNorm(t, 2, g, c, 1e-5), [x, w, b]);
  gradcheck('groupNorm silu', (t, g, c) => T.groupNorm(t, 2, g, c, 1e-5, true), [x, w, b]);
  gradcheck('groupNorm no affine', (t) => T.groupNorm(t, 4, null, null, 1e-5), [rnd([1, 4, 5], 9)]);
  gradcheck('groupNorm silu no affine', (t) => T.groupNorm(t, 1, null, null, 1e-5, true), [rnd([2, 3, 2, 3], 10)]);
  // Non-contiguous input (channels-last buffer viewed as NCHW).
  const xp = T.permute(rnd([2, 3, 3, 4], 11), [0, 3, 1, 2]);
  gradcheck('groupNorm non-contiguous', (t, g, c) => T.groupNorm(t, 2, g, c, 1e-5, true), [xp, w, b]);
  gradcheck('groupNorm weight only', (t, g) => T.groupNorm(t, 2, g, null, 1e-5), [x, w], { constant: [0] });
});

test('layerNorm: forward and gradients', () => {
  const x = rnd([2, 3, 5], 12), w = rnd([5], 13), b = rnd([5], 14);
  const m = T.mean(x, -1, true), v = T.variance(x, -1, true);
  const ref = T.add(T.mul(T.div(T.sub(x, m), T.sqrt(T.add(v, 1e-5))), w), b);
  assertClose(T.layerNorm(x, w, b, 1e-5).toArray(), ref.toArray(), 1e-13, 'layerNorm');
  // Known values: [1, 2, 3] → (x − 2)/√(2/3 + eps).
  const k = T.layerNorm(T.tensor([1, 2, 3], undefined, 'float64'), null, null, 0).toArray();
  assertClose(k, [-Math.sqrt(1.5), 0, Math.sqrt(1.5)], 1e-15, 'layerNorm known');
  gradcheck('layerNorm', (t, g, c) => T.layerNorm(t, g, c, 1e-5), [x, w, b]);
  gradcheck('layerNorm no affine', (t) => T.layerNorm(t, null, null, 1e-5), [rnd([4, 3], 15)]);
  gradcheck('layerNorm transposed', (t, g) => T.layerNorm(t, g, null, 1e-5), [T.transpose(rnd([2, 5, 3], 16)), rnd([5], 17)]);
  assert.throws(() => T.layerNorm(x, rnd([4]), null), /layerNorm: weight \[4\] does not match input \[2, 3, 5\] \(expected \[5\]\)/);
});

test('batchNorm: training statistics, running-stat updates, eval mode, gradients', () => {
  const x = rnd([3, 2, 2, 2], 18), w = rnd([2], 19), b = rnd([2], 20);
  const rm = T.tensor([0.5, -1], undefined, 'float64'), rv = T.tensor([2, 0.5], undefined, 'float64');
  const y = T.batchNorm(x, rm, rv, w, b, true, 0.1, 1e-5);
  const xs = x.toArray();
  // Per-channel batch statistics by hand.
  for (let c = 0; c < 2; c++) {
    const vals: number[] = [];
    for (let n = 0; n < 3; n++) for (let i = 0; i < 4; i++) vals.push(xs[(n * 2 + c) * 4 + i]);
    const mu = vals.reduce((s, t) => s + t, 0) / vals.length;
    const ss = vals.reduce((s, t) => s + (t - mu) ** 2, 0);
    const expectY = vals.map((t) => ((t - mu) / Math.sqrt(ss / vals.length + 1e-5)) * w.toArray()[c] + b.toArray()[c]);
    const got: number[] = [];
    const ya = y.toArray();
    for (let n = 0; n < 3; n++) for (let i = 0; i < 4; i++) got.push(ya[(n * 2 + c) * 4 + i]);
    assertClose(got, expectY, 1e-13, `batchNorm channel ${c}`);
    assert.ok(Math.abs(rm.toArray()[c] - (0.9 * [0.5, -1][c] + 0.1 * mu)) < 1e-14, 'running mean');
    assert.ok(Math.abs(rv.toArray()[c] - (0.9 * [2, 0.5][c] + 0.1 * ss / (vals.length - 1))) < 1e-14, 'running var (unbiased)');
  }
  // Eval: running statistics.
  const ye = T.batchNorm(x, rm, rv, null, null, false).toArray();
  const rma = rm.toArray(), rva = rv.toArray();
  assertClose(ye, xs.map((t, i) => (t - rma[Math.floor(i / 4) % 2]) / Math.sqrt(rva[Math.floor(i / 4) % 2] + 1e-5)), 1e-13, 'batchNorm eval');
  gradcheck('batchNorm train', (t, g, c) => T.batchNorm(t, null, null, g, c, true), [x, w, b]);
  gradcheck('batchNorm eval', (t, g, c) => T.batchNorm(t, rm, rv, g, c, false), [x, w, b]);
  gradcheck('batchNorm 2-D non-contiguous', (t) => T.batchNorm(t, T.zeros([3], 'float64'), T.ones([3], 'float64'), null, null, true), [T.transpose(rnd([3, 4], 21))]);
  assert.throws(() => T.batchNorm(rnd([1, 2]), null, null, null, null, true), /batchNorm: expected more than 1 value per channel when training/);
});

test('norm ops: bad calls name the op and shapes', () => {
  assert.throws(() => T.groupNorm(rnd([1, 6, 2]), 4, null, null, 1e-5), /groupNorm: 6 channels of input \[1, 6, 2\] cannot be split into 4 groups/);
  assert.throws(() => T.groupNorm(rnd([1, 4, 2]), 2, rnd([3]), null, 1e-5), /groupNorm: weight \[3\] does not match input \[1, 4, 2\]/);
  assert.throws(() => T.groupNorm(T.zeros([1, 4, 2], 'int32'), 2, null, null, 1e-5), /groupNorm: input must be float32 or float64, got int32/);
  assert.throws(() => T.groupNorm(T.zeros([1, 4, 2]), 2, rnd([4]), null, 1e-5), /groupNorm: dtype mismatch: input is float32 \[1, 4, 2\] but weight is float64 \[4\]/);
});

test('softmax / logSoftmax: known values, any axis, stability', () => {
  // torch.softmax(torch.tensor([1., 2., 3.]), 0)
  assertClose(T.softmax(T.tensor([1, 2, 3], undefined, 'float64')).toArray(), [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], 1e-15, 'softmax');
  assertClose(T.logSoftmax(T.tensor([1, 2, 3], undefined, 'float64')).toArray(), [-2.4076059644443806, -1.4076059644443806, -0.4076059644443806], 1e-15, 'logSoftmax');
  assertClose(T.softmax(T.tensor([1000, 1001])).toArray(), [0.2689414213699951, 0.7310585786300049], 1e-7, 'softmax large');
  assertClose(T.logSoftmax(T.tensor([-1000, 0])).toArray(), [-1000, 0], 1e-7, 'logSoftmax large');
  const x = rnd([2, 3, 4], 22);
  for (const axis of [0, 1, 2, -1]) {
    const ref = T.div(T.exp(x), T.sum(T.exp(x), axis, true));
    assertClose(T.softmax(x, axis).toArray(), ref.toArray(), 1e-14, `softmax axis ${axis}`);
    assertClose(T.logSoftmax(x, axis).toArray(), T.log(ref).toArray(), 1e-14, `logSoftmax axis ${axis}`);
    gradcheck(`softmax axis ${axis}`, (t) => T.softmax(t, axis), [x]);
    gradcheck(`logSoftmax axis ${axis}`, (t) => T.logSoftmax(t, axis), [x]);
  }
  gradcheck('softmax non-contiguous', (t) => T.softmax(t, 1), [T.permute(rnd([4, 2, 3], 23), [1, 2, 0])]);
  assert.throws(() => T.softmax(x, 3), /softmax: axis 3 is out of range for a tensor of rank 3/);
  assert.throws(() => T.softmax(T.zeros([2], 'int32')), /softmax: input must be float32 or float64, got int32/);
});
