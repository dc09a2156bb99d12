import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { setConvColumnBudget } from '../../src/engine/kernels/conv.js';
import { assertClose, gradcheck, rnd } from '../helpers/gradcheck.js';

/** Direct-loop convolution, written independently of the im2col kernels. */
function naiveConv(x: T.Tensor, w: T.Tensor, b: T.Tensor | null, sh: number, sw: number, [pt, pb, pl, pr]: number[]): { shape: number[]; data: number[] } {
  const [N, C, H, W] = x.shape;
  const [O, , kh, kw] = w.shape;
  const xv = x.toArray(), wv = w.toArray(), bv = b ? b.toArray() : null;
  const OH = Math.floor((H + pt + pb - kh) / sh) + 1, OW = Math.floor((W + pl + pr - kw) / sw) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let s = bv ? bv[o] : 0;
    for (let c = 0; c < C; c++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const ih = oh * sh - pt + i, iw = ow * sw - pl + j;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      s += xv[((n * C + c) * H + ih) * W + iw] * wv[((o * C + c) * kh + i) * kw + j];
    }
    out.push(s);
  }
  return { shape: [N, O, OH, OW], data: out };
}

const cases: { name: string; x: number[]; w: number[]; stride: number | [number, number]; padding: T.Conv2dOptions['padding']; pads: number[] }[] = [
  { name: '3x3 s1 p1', x: [2, 3, 5, 6], w: [4, 3, 3, 3], stride: 1, padding: 1, pads: [1, 1, 1, 1] },
  { name: '3x3 s2 pad (0,1,0,1)', x: [2, 3, 5, 5], w: [2, 3, 3, 3], stride: 2, padding: [0, 1, 0, 1], pads: [0, 1, 0, 1] },
  { name: '3x2 stride [2,1] pad [1,2]', x: [1, 2, 6, 5], w: [3, 2, 3, 2], stride: [2, 1], padding: [1, 2], pads: [1, 1, 2, 2] },
  { name: '1x1 pointwise', x: [2, 4, 3, 5], w: [3, 4, 1, 1], stride: 1, padding: 0, pads: [0, 0, 0, 0] },
  { name: '1x1 stride 2', x: [1, 2, 5, 5], w: [3, 2, 1, 1], stride: 2, padding: 0, pads: [0, 0, 0, 0] },
  { name: '4x4 s3 odd', x: [1, 3, 7, 9], w: [2, 3, 4, 4], stride: 3, padding: [2, 0, 1, 3], pads: [2, 0, 1, 3] },
];

test('conv2d: forward matches a direct loop (several strides and paddings, with and without row blocking)', () => {
  for (const budget of [1 << 22, 1]) {
    const old = setConvColumnBudget(budget);
    try {
      for (const [k, c] of cases.entries()) {
        const x = rnd(c.x, 10 + k), w = rnd(c.w, 20 + k), b = rnd([c.w[0]], 30 + k);
        const sh = typeof c.stride === 'number' ? c.stride : c.stride[0];
        const sw = typeof c.stride === 'number' ? c.stride : c.stride[1];
        const ref = naiveConv(x, w, b, sh, sw, c.pads);
        const y = T.conv2d(x, w, b, { stride: c.stride, padding: c.padding });
        assert.deepEqual(y.shape, ref.shape, c.name);
        assertClose(y.toArray(), ref.data, 1e-13, `${c.name} (budget ${budget})`);
        const y0 = T.conv2d(x, w, null, { stride: c.stride, padding: c.padding });
        assertClose(y0.toArray(), naiveConv(x, w, null, sh, sw, c.pads).data, 1e-13, `${c.name} no bias`);
        // float32 runs the same kernels.
        const y32 = T.conv2d(T.cast(x, 'float32'), T.cast(w, 'float32'), T.cast(b, 'float32'), { stride: c.stride, padding: c.padding });
        assert.equal(y32.dtype, 'float32');
        assertClose(y32.toArray(), ref.data, 1e-6, `${c.name} float32`);
      }
    } finally {
      setConvColumnBudget(old);
    }
  }
  // A tiny case by hand: all-ones 1×1×3×3 input, 2×2 ones kernel, stride 1, no padding → 4 everywhere.
  assert.deepEqual(T.conv2d(T.ones([1, 1, 3, 3]), T.ones([1, 1, 2, 2])).toArray(), [4, 4, 4, 4]);
  // Padding 1 on the same input: corners see one input pixel.
  assert.deepEqual(T.conv2d(T.ones([1, 1, 2, 2]), T.ones([1, 1, 2, 2]), null, { padding: 1 }).toArray(), [1, 2, 1, 2, 4, 2, 1, 2, 1]);
});

test('conv2d: gradients match finite differences', () => {
  for (const [k, c] of cases.entries()) {
    const opts = { stride: c.stride, padding: c.padding };
    gradcheck(`conv2d ${c.name}`, (x, w, b) => T.conv2d(x, w, b, opts), [rnd(c.x, 40 + k), rnd(c.w, 50 + k), rnd([c.w[0]], 60 + k)]);
  }
  // Non-contiguous input (a permuted NHWC buffer) and a transposed weight view.
  const xp = T.permute(rnd([2, 5, 4, 3], 70), [0, 3, 1, 2]);
  assert.equal(xp.isContiguous(), false);
  const wt = T.transpose(rnd([3, 2, 3, 3], 71), 0, 1); // [2, 3, 3, 3] view
  gradcheck('conv2d non-contiguous', (x, w) => T.conv2d(x, w, null, { stride: 2, padding: [0, 1, 0, 1] }), [xp, wt]);
  // Only the bias differentiated (weight constant), and only the input.
  gradcheck('conv2d bias only', (x, w, b) => T.conv2d(x, w, b, { padding: 1 }), [rnd([1, 2, 3, 3], 72), rnd([2, 2, 3, 3], 73), rnd([2], 74)], { constant: [0, 1] });
  gradcheck('conv2d input only', (x, w) => T.conv2d(x, w, null, { stride: 2, padding: 1 }), [rnd([1, 2, 4, 5], 75), rnd([3, 2, 3, 3], 76)], { constant: [1] });
  // Row-blocked backward.
  const old = setConvColumnBudget(1);
  try {
    gradcheck('conv2d blocked', (x, w, b) => T.conv2d(x, w, b, { stride: [2, 1], padding: [1, 0, 0, 1] }), [rnd([2, 2, 5, 4], 77), rnd([3, 2, 3, 2], 78), rnd([3], 79)]);
  } finally {
    setConvColumnBudget(old);
  }
});

test('conv2d: bad calls name the op and shapes', () => {
  assert.throws(() => T.conv2d(T.zeros([1, 3, 4, 4]), T.zeros([2, 4, 3, 3])), /conv2d: input \[1, 3, 4, 4\] has 3 channels but weight \[2, 4, 3, 3\] expects 4/);
  assert.throws(() => T.conv2d(T.zeros([1, 3, 4, 4], 'int32'), T.zeros([2, 3, 3, 3])), /conv2d: input must be float32 or float64, got int32 \[1, 3, 4, 4\]/);
  assert.throws(() => T.conv2d(T.zeros([1, 3, 4, 4]), T.zeros([2, 3, 3, 3], 'float64')), /conv2d: dtype mismatch: input is float32 \[1, 3, 4, 4\] but weight is float64/);
  assert.throws(() => T.conv2d(T.zeros([3, 4, 4]), T.zeros([2, 3, 3, 3])), /conv2d: input must be \[N, C, H, W\], got \[3, 4, 4\]/);
  assert.throws(() => T.conv2d(T.zeros([1, 3, 4, 4]), T.zeros([2, 3, 3, 3]), T.zeros([3])), /conv2d: bias \[3\] does not match weight \[2, 3, 3, 3\]/);
  assert.throws(() => T.conv2d(T.zeros([1, 3, 2, 2]), T.zeros([2, 3, 3, 3])), /conv2d: kernel 3×3 is larger than the padded input \[1, 3, 2, 2\]/);
});

test('resampling: known values', () => {
  const x = T.tensor([[[[1, 2], [3, 4]]]]);
  assert.deepEqual(T.upsampleNearest(x).toArray(), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  assert.deepEqual(T.upsampleNearest(T.tensor([[[[5, 6]]]]), 3).shape, [1, 1, 3, 6]);
  assert.deepEqual(T.upsampleNearest(T.tensor([[[[5, 6]]]]), 3).toArray(), [5, 5, 5, 6, 6, 6, 5, 5, 5, 6, 6, 6, 5, 5, 5, 6, 6, 6]);
  const p = T.arange(25).reshape([1, 1, 5, 5]);
  // 2×2 windows, floor: rows 0-1 and 2-3, cols 0-1 and 2-3.
  assert.deepEqual(T.avgPool2d(p).toArray(), [3, 5, 13, 15]);
  assert.deepEqual(T.avgPool2d(p, 3, 2).toArray(), [6, 8, 16, 18]);
  // max_pool2d(2, 2): the last row and column of a 5×5 dropped; a NaN in a window wins it.
  assert.deepEqual(T.maxPool2x2(p).toArray(), [6, 8, 16, 18]);
  const withNaN = T.maxPool2x2(T.tensor([[[[1, NaN, 7, 2], [9, 3, 4, 1]]]])).toArray();
  assert.ok(Number.isNaN(withNaN[0]) && withNaN[1] === 7, `[${withNaN}]`);
  assert.throws(() => T.maxPool2x2(T.zeros([1, 1, 1, 4])), /maxPool2x2: input \[1, 1, 1, 4\] is smaller than the 2×2 window/);
  // F.interpolate(x, size=(3, 3), mode='bilinear', align_corners=False): source rows/cols 0, 0.5, 1 (clamped).
  assert.deepEqual(T.interpolateBilinear(x, [3, 3]).toArray(), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
  // size=(1, 4) of a 1×2 row: sources -0.25→0, 0.25, 0.75, 1.25→1 → [1, 1.25, 1.75, 2].
  assert.deepEqual(T.interpolateBilinear(T.tensor([[[[1, 2]]]]), [1, 4]).toArray(), [1, 1.25, 1.75, 2]);
  // Downsampling 2×5 → 1×2: by size the column scale is 5/2 (sources 0.75, 3.25); with scale_factor 0.5
  // PyTorch uses 1/0.5 = 2 (sources 0.5, 2.5). Rows average (source 0.5).
  const r = T.tensor([[[[0, 1, 4, 9, 16], [10, 11, 14, 19, 26]]]]);
  assertClose(T.interpolateBilinear(r, [1, 2]).toArray(), [5.75, 15.75], 1e-15, 'bilinear by size');
  assertClose(T.interpolateBilinear(r, [1, 2], 0.5).toArray(), [5.5, 11.5], 1e-15, 'bilinear by scale factor');
  assert.throws(() => T.upsampleNearest(T.zeros([2, 2, 2])), /upsampleNearest: input must be \[N, C, H, W\], got \[2, 2, 2\]/);
  assert.throws(() => T.avgPool2d(T.zeros([1, 1, 2, 2]), 3), /avgPool2d: kernel 3 is larger than the input \[1, 1, 2, 2\]/);
  assert.throws(() => T.upsampleNearest(T.zeros([1, 1, 2, 2]), 1.5), /upsampleNearest: scale must be a positive integer/);
});

test('resampling: gradients match finite differences', () => {
  const x = rnd([2, 2, 3, 5], 80);
  gradcheck('upsampleNearest x2', (t) => T.upsampleNearest(t), [x]);
  gradcheck('upsampleNearest x3', (t) => T.upsampleNearest(t, 3), [rnd([1, 2, 2, 3], 81)]);
  gradcheck('upsampleNearest non-contiguous', (t) => T.upsampleNearest(t), [T.transpose(rnd([2, 2, 5, 3], 82))]);
  gradcheck('avgPool2d 2', (t) => T.avgPool2d(t), [rnd([2, 2, 5, 5], 83)]);
  gradcheck('avgPool2d 3/2', (t) => T.avgPool2d(t, 3, 2), [rnd([1, 2, 7, 6], 84)]);
  gradcheck('maxPool2x2 odd sizes', (t) => T.maxPool2x2(t), [rnd([2, 3, 5, 7], 86)]);
  gradcheck('maxPool2x2 non-contiguous', (t) => T.maxPool2x2(t), [T.transpose(rnd([1, 2, 6, 4], 87))]);
  gradcheck('bilinear up', (t) => T.interpolateBilinear(t, [5, 7]), [x]);
  gradcheck('bilinear down', (t) => T.interpolateBilinear(t, [2, 2]), [x]);
  gradcheck('bilinear scale factor', (t) => T.interpolateBilinear(t, [1, 2], 0.5), [x]);
  gradcheck('bilinear non-contiguous', (t) => T.interpolateBilinear(t, [4, 3]), [T.permute(rnd([3, 5, 2, 2], 85), [2, 3, 0, 1])]);
});

test('conv2d kernels use the GEMM of the active kernel table', () => {
  const orig = T.K.gemm;
  let calls = 0;
  T.K.gemm = (args) => {
    calls++;
    orig(args);
  };
  try {
    const x = T.requireGrad(rnd([1, 2, 4, 4], 90)), w = T.requireGrad(rnd([3, 2, 3, 3], 91));
    T.sum(T.conv2d(x, w, null, { padding: 1 })).backward();
    assert.equal(calls, 3, 'forward, input gradient and weight gradient each run one GEMM');
  } finally {
    T.K.gemm = orig;
  }
});
