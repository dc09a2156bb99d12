import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { assertClose, gradcheck, rnd } from '../helpers/gradcheck.js';

test('losses: values for each reduction, gradients, broadcasting', () => {
  const a = T.tensor([1, 2, 3], undefined, 'float64'), b = T.tensor([1, 0, 5], undefined, 'float64');
  assert.equal(T.mseLoss(a, b).item(), 8 / 3);
  assert.equal(T.mseLoss(a, b, 'sum').item(), 8);
  assert.deepEqual(T.mseLoss(a, b, 'none').toArray(), [0, 4, 4]);
  assert.equal(T.l1Loss(a, b).item(), 4 / 3);
  assert.equal(T.l1Loss(a, b, 'sum').item(), 4);
  assert.deepEqual(T.l1Loss(a, b, 'none').toArray(), [0, 2, 2]);
  for (const red of ['mean', 'sum', 'none'] as const) {
    gradcheck(`mseLoss ${red}`, (x, y) => T.mseLoss(x, y, red), [rnd([2, 3], 1), rnd([2, 3], 2)]);
    gradcheck(`l1Loss ${red}`, (x, y) => T.l1Loss(x, y, red), [rnd([2, 3], 3), rnd([2, 3], 4)]);
  }
  gradcheck('mseLoss broadcast', (x, y) => T.mseLoss(x, y), [rnd([2, 3], 5), rnd([3], 6)]);
  gradcheck('mseLoss transposed', (x, y) => T.mseLoss(x, y), [T.transpose(rnd([3, 2], 7)), rnd([2, 3], 8)]);
  assert.deepEqual(T.mseLoss(rnd([2, 3]), rnd([3]), 'none').shape, [2, 3]);
  assert.throws(() => T.mseLoss(a, b, 'avg' as 'mean'), /mseLoss: unknown reduction 'avg'/);
  assert.throws(() => T.l1Loss(a, T.zeros([3], 'int32')), /l1Loss: target must be float32 or float64, got int32/);
});

test('embedding: lookup, scatter-add gradient, int64 indices, range errors', () => {
  const w = T.tensor([[0, 1], [10, 11], [20, 21], [30, 31], [40, 41]], undefined, 'float64');
  const idx = T.tensor([[0, 4], [2, 2]], undefined, 'int32');
  const e = T.embedding(w, idx);
  assert.deepEqual(e.shape, [2, 2, 2]);
  assert.deepEqual(e.toArray(), [0, 1, 40, 41, 20, 21, 20, 21]);
  assert.deepEqual(T.embedding(w, T.tensor([3, 1], undefined, 'int64')).toArray(), [30, 31, 10, 11]);
  // Repeated index 2 gets both gradients.
  const wl = T.requireGrad(T.tensor(w.toArray(), [5, 2], 'float64'));
  T.sum(T.mul(T.embedding(wl, idx), T.arange(8, undefined, 1, 'float64').reshape([2, 2, 2]))).backward();
  assert.deepEqual(wl.grad!.toArray(), [0, 1, 0, 0, 4 + 6, 5 + 7, 0, 0, 2, 3]);
  gradcheck('embedding', (wt, i) => T.embedding(wt, i), [rnd([5, 3], 9), T.tensor([[1, 1, 4]], undefined, 'int64')], { constant: [1] });
  gradcheck('embedding transposed weight', (wt, i) => T.embedding(wt, i), [T.transpose(rnd([3, 4], 10)), T.tensor([0, 3, 0], undefined, 'int32')], { constant: [1] });
  assert.throws(() => T.embedding(w, T.tensor([1, 5], undefined, 'int32')), /embedding: index 5 \(position 1 of indices \[2\]\) is out of range for 5 embeddings \(weight \[5, 2\]\)/);
  assert.throws(() => T.embedding(w, T.tensor([-1], undefined, 'int64')), /embedding: index -1 .* out of range for 5 embeddings/);
  assert.throws(() => T.embedding(w, T.tensor([1])), /embedding: indices must be int32 or int64, got float32 \[1\]/);
});

test('indexSelect and gather: PyTorch semantics and gradients', () => {
  const x = T.arange(12, undefined, 1, 'float64').reshape([3, 4]);
  assert.deepEqual(T.indexSelect(x, 0, T.tensor([2, 0], undefined, 'int32')).toArray(), [8, 9, 10, 11, 0, 1, 2, 3]);
  assert.deepEqual(T.indexSelect(x, -1, T.tensor([3, 3, 1], undefined, 'int64')).toArray(), [3, 3, 1, 7, 7, 5, 11, 11, 9]);
  // torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) → [[1, 1], [4, 3]]
  const g = T.tensor([[1, 2], [3, 4]], undefined, 'float64');
  assert.deepEqual(T.gather(g, 1, T.tensor([[0, 0], [1, 0]], undefined, 'int64')).toArray(), [1, 1, 4, 3]);
  assert.deepEqual(T.gather(g, 0, T.tensor([[1, 0]], undefined, 'int32')).toArray(), [3, 2]);
  const y = rnd([2, 3, 4], 11);
  gradcheck('indexSelect axis 1 repeated', (t, i) => T.indexSelect(t, 1, i), [y, T.tensor([2, 0, 2, 2], undefined, 'int32')], { constant: [1] });
  gradcheck('indexSelect non-contiguous', (t, i) => T.indexSelect(t, 2, i), [T.permute(rnd([4, 2, 3], 12), [1, 2, 0]), T.tensor([3, 1], undefined, 'int64')], { constant: [1] });
  // gather with an index smaller than the input outside the axis, and repeated entries.
  const gi = T.tensor([[[0, 2], [1, 1]], [[2, 2], [0, 1]]], undefined, 'int32'); // [2, 2, 2], gather axis 1 of [2, 3, 4]
  const ga = T.gather(y, 1, gi);
  const ya = y.toArray(), ia = gi.toArray();
  const expect: number[] = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 2; c++) expect.push(ya[(a * 3 + ia[(a * 2 + b) * 2 + c]) * 4 + c]);
  assert.deepEqual(ga.toArray(), expect);
  gradcheck('gather', (t, i) => T.gather(t, 1, i), [y, gi], { constant: [1] });
  gradcheck('gather last axis, transposed input', (t, i) => T.gather(t, -1, i), [T.transpose(rnd([3, 2], 13)), T.tensor([[2, 2, 0], [1, 0, 1]], undefined, 'int64')], { constant: [1] });
  assert.throws(() => T.indexSelect(x, 0, T.tensor([3], undefined, 'int32')), /indexSelect: index 3 .* out of range for axis 0 of input \[3, 4\] \(size 3\)/);
  assert.throws(() => T.indexSelect(x, 0, T.tensor([[0]], undefined, 'int32')), /indexSelect: indices must be 1-D, got \[1, 1\]/);
  assert.throws(() => T.gather(x, 1, T.tensor([[0, 1, 2, 4]], undefined, 'int32')), /gather: index 4 .* out of range for axis 1 of input \[3, 4\]/);
  assert.throws(() => T.gather(x, 1, T.tensor([0], undefined, 'int32')), /gather: indices \[1\] must have the rank of input \[3, 4\]/);
});

test('dropout: eval identity, inverted scaling, seeded masks, gradient through the mask', () => {
  const x = rnd([4, 5], 14);
  assert.equal(T.dropout(x, 0.5, false), x);
  assert.equal(T.dropout(x, 0, true), x);
  const ones = T.ones([20000], 'float64');
  const y = T.dropout(ones, 0.3, true, new T.Generator(7)).toArray();
  const zeros = y.filter((t) => t === 0).length;
  assert.ok(Math.abs(zeros / y.length - 0.3) < 0.015, `fraction dropped ${zeros / y.length}`);
  assert.ok(y.every((t) => t === 0 || Math.abs(t - 1 / 0.7) < 1e-15), 'survivors scaled by 1/(1-p)');
  assert.deepEqual(T.dropout(x, 0.5, true, new T.Generator(3)).toArray(), T.dropout(x, 0.5, true, new T.Generator(3)).toArray());
  assert.ok(T.dropout(x, 1, true).toArray().every((t) => t === 0));
  gradcheck('dropout', (t) => T.dropout(t, 0.4, true, new T.Generator(5)), [x]);
  const xl = T.requireGrad(rnd([50], 15));
  const out = T.dropout(xl, 0.5, true, new T.Generator(9));
  T.sum(out).backward();
  const o = out.toArray(), gr = xl.grad!.toArray();
  gr.forEach((gv, i) => assert.equal(gv, o[i] === 0 ? 0 : 2));
  assert.throws(() => T.dropout(x, 1.5, true), /dropout: probability must be in \[0, 1\], got 1.5/);
});
