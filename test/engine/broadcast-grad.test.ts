// Fast paths for gradients of broadcast operands: sum over separated axes (reduced run by run, no permuted
// copy) and matmul's gradient for a weight shared by every batch entry (batch-summed GEMM).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { gradcheck, rnd, assertClose } from '../helpers/gradcheck.js';

const vals = (t: T.Tensor): number[] => Array.from(T.contiguousData(t) as Float32Array | Float64Array);

// Reference: move the reduced axes last, flatten them, sum in float64.
function refSum(x: T.Tensor, axes: number[], keepdim: boolean): number[] {
  const rest = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const p = T.contiguous(T.permute(T.cast(x, 'float64'), [...rest, ...axes]));
  const n = axes.reduce((a, i) => a * x.shape[i], 1);
  const d = p.data as Float64Array, out: number[] = [];
  for (let o = 0; o < d.length / n; o++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += d[o * n + j];
    out.push(s);
  }
  void keepdim;
  return out;
}

test('sum over separated axes: values and shapes (float32 and float64, views with an offset)', () => {
  const x64 = rnd([3, 5, 4, 6], 1);
  for (const dtype of ['float32', 'float64'] as const) {
    const x = T.cast(x64, dtype);
    for (const axes of [[0, 2], [1, 3], [0, 2, 3], [0, 1, 3], [0, 3], [3, 0]]) {
      for (const keepdim of [true, false]) {
        const s = T.sum(x, axes, keepdim);
        const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
        assert.deepEqual([...s.shape], keepdim ? kept : x.shape.filter((_, i) => !axes.includes(i)), `shape ${axes} ${keepdim}`);
        const ref = refSum(x, [...axes].sort(), keepdim);
        assertClose(vals(s), ref, dtype === 'float32' ? 1e-6 : 1e-14, `sum ${axes} ${dtype}`);
      }
    }
  }
  // A contiguous view with a non-zero offset (the second half of a buffer).
  const big = T.cast(rnd([2, 3, 5, 4, 6], 2), 'float32');
  const view = T.reshape(T.slice(big, 0, 1, 2), [3, 5, 4, 6]);
  assert.ok(view.isContiguous() && view.offset > 0);
  const s = T.sum(view, [0, 2]);
  const ref = refSum(view, [0, 2], false);
  assertClose(vals(s), ref, 1e-6, 'sum of an offset view');
});

test('sum over separated axes and bias-like broadcasting: gradients', () => {
  gradcheck('sum [0, 2]', (x) => T.sum(T.mul(x, x), [0, 2]), [rnd([2, 3, 4], 3)]);
  gradcheck('sum [0, 2, 3] keepdim', (x) => T.sum(T.sin(x), [0, 2, 3], true), [rnd([2, 3, 4, 2], 4)]);
  // The bias of a 1×1 conv1d: [C, 1] broadcast over [B, C, T] (its gradient is summed over axes 0 and 2).
  gradcheck('add bias [C, 1]', (y, b) => T.sum(T.square(T.add(y, b))), [rnd([2, 3, 5], 5), rnd([3, 1], 6)]);
});

test('matmul: gradient of a weight shared by the batch is the batch-summed product', () => {
  const w = rnd([4, 3], 7), x = rnd([2, 3, 3, 5], 8);
  gradcheck('W @ x (W broadcast)', (a, b) => T.sum(T.square(T.matmul(a, b))), [w, x]);
  gradcheck('x @ W (W broadcast, 3-D)', (a, b) => T.sum(T.square(T.matmul(a, b))), [rnd([3, 2, 4], 9), rnd([1, 4, 3], 10)]);
  gradcheck('x @ Wᵀ (transposed view)', (a, b) => T.sum(T.square(T.matmul(a, T.transpose(b)))), [rnd([3, 2, 4], 11), rnd([5, 4], 12)]);
  // float32 against the explicit per-batch sum.
  for (const dtype of ['float32', 'float64'] as const) {
    const W = T.requireGrad(T.cast(rnd([6, 5], 13), dtype)), X = T.requireGrad(T.cast(rnd([3, 5, 7], 14), dtype));
    const y = T.matmul(W, X);
    const gy = T.cast(rnd([...y.shape], 15), dtype);
    T.backward(y, { grad: gy });
    const ref = T.sum(T.matmul(gy, T.transpose(X.detach())), [0]);
    assert.deepEqual([...W.grad!.shape], [6, 5]);
    assertClose(vals(W.grad!), vals(ref), dtype === 'float32' ? 1e-6 : 1e-14, `shared weight gradient ${dtype}`);
    assertClose(vals(T.batchSummedMatmul(gy, T.transpose(X.detach()))), vals(ref), dtype === 'float32' ? 1e-6 : 1e-14, `batchSummedMatmul ${dtype}`);
  }
});

test('slice gradient: zero outside the slice, g inside (long rows zero only the complement)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const x = T.requireGrad(T.cast(rnd([2, 6, 8, 9], 16), dtype)); // inner 72 ≥ 64: the row-wise path
    const [a, b, c] = T.split(x, [1, 3, 2], 1);
    const ga = T.cast(rnd([2, 1, 8, 9], 17), dtype), gc = T.cast(rnd([2, 2, 8, 9], 18), dtype);
    T.backward(T.add(T.sum(T.mul(a, ga)), T.sum(T.mul(c, gc))));
    void b;
    const gx = vals(x.grad!), A = vals(ga), C = vals(gc);
    const expected: number[] = [];
    for (let o = 0; o < 2; o++) {
      for (let ch = 0; ch < 6; ch++) {
        for (let i = 0; i < 72; i++) {
          expected.push(ch === 0 ? A[o * 72 + i] : ch >= 4 ? C[(o * 2 + ch - 4) * 72 + i] : 0);
        }
      }
    }
    assert.deepEqual(gx, expected, `split gradient ${dtype}`);
  }
  gradcheck('slice rows [1:3] of axis 1 (long rows)', (x) => T.sum(T.square(T.slice(x, 1, 1, 3))), [rnd([2, 4, 64], 19)]);
  gradcheck('slice with step', (x) => T.sum(T.square(T.slice(x, 1, 0, 4, 2))), [rnd([2, 4, 64], 20)]);
});

test('conv2d backward with a strided upstream gradient (gathered into a pooled buffer)', () => {
  // permute's backward hands the conv a non-contiguous gradient.
  gradcheck('conv2d → permute', (x, w, b) => T.sum(T.square(T.permute(T.conv2d(x, w, b, { padding: 1 }), [0, 2, 3, 1]))),
    [rnd([2, 3, 5, 4], 21), rnd([4, 3, 3, 3], 22), rnd([4], 23)]);
  for (const dtype of ['float32', 'float64'] as const) {
    const run = (strided: boolean) => {
      const x = T.requireGrad(T.cast(rnd([2, 3, 6, 5], 24), dtype)), w = T.requireGrad(T.cast(rnd([4, 3, 3, 3], 25), dtype));
      const b = T.requireGrad(T.cast(rnd([4], 26), dtype));
      const y = T.conv2d(x, w, b, { padding: 1 });
      const gNHWC = T.cast(rnd([2, 6, 5, 4], 27), dtype);
      const g = strided ? T.permute(gNHWC, [0, 3, 1, 2]) : T.contiguous(T.permute(gNHWC, [0, 3, 1, 2]));
      assert.equal(g.isContiguous(), !strided);
      T.backward(y, { grad: g });
      return [x.grad!, w.grad!, b.grad!].map(vals);
    };
    const [a, c] = [run(true), run(false)];
    a.forEach((v, i) => assert.deepEqual(v, c[i], `conv2d gradient ${i} ${dtype}`));
  }
});
