import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { gradcheck, rnd } from '../helpers/gradcheck.js';

test('unary ops: gradients match finite differences', () => {
  const x = rnd([3, 4], 1);
  const pos = T.addScalar(T.abs(rnd([3, 4], 2)), 0.5);
  for (const [name, f] of [
    ['neg', T.neg], ['exp', T.exp], ['sin', T.sin], ['cos', T.cos], ['sigmoid', T.sigmoid], ['tanh', T.tanh],
    ['silu', T.silu], ['gelu', T.gelu], ['square', T.square], ['leakyRelu', (t: T.Tensor) => T.leakyRelu(t, 0.2)],
    ['clamp', (t: T.Tensor) => T.clamp(t, -0.5, 0.7)], ['abs', T.abs],
  ] as const) gradcheck(name, f as (t: T.Tensor) => T.Tensor, [x]);
  for (const [name, f] of [['log', T.log], ['sqrt', T.sqrt], ['rsqrt', T.rsqrt], ['reciprocal', T.reciprocal],
    ['pow', (t: T.Tensor) => T.pow(t, 1.7)]] as const) gradcheck(name, f as (t: T.Tensor) => T.Tensor, [pos]);
});

test('binary ops with broadcasting and non-contiguous views', () => {
  const a = rnd([2, 3, 4], 3);
  const b = rnd([3, 1], 4);
  const bt = T.transpose(rnd([4, 3], 5)); // [3,4] non-contiguous
  for (const [name, f] of [['add', T.add], ['sub', T.sub], ['mul', T.mul], ['maximum', T.maximum], ['minimum', T.minimum]] as const) {
    gradcheck(name, f as (x: T.Tensor, y: T.Tensor) => T.Tensor, [a, b]);
    gradcheck(`${name} (transposed)`, f as (x: T.Tensor, y: T.Tensor) => T.Tensor, [a, bt]);
  }
  const pos = T.addScalar(T.abs(b), 1);
  gradcheck('div', T.div, [a, pos]);
  gradcheck('pow', T.pow as (x: T.Tensor, y: T.Tensor) => T.Tensor, [T.addScalar(T.abs(a), 0.5), b]);
  gradcheck('where', (c, x, y) => T.where(c, x, y), [T.gt(b, 0), a, bt], { constant: [0] });
});

test('values: broadcasting arithmetic and GELU', () => {
  const a = T.tensor([[1, 2, 3]]);
  const b = T.tensor([[10], [20]]);
  assert.deepEqual(T.add(a, b).toArray(), [11, 12, 13, 21, 22, 23]);
  assert.deepEqual(T.add(a, b).shape, [2, 3]);
  // torch.nn.functional.gelu(torch.tensor([-1., 0.5, 2.])) (exact erf)
  const g = T.gelu(T.tensor([-1, 0.5, 2])).toArray();
  [-0.15865525, 0.34573123, 1.9544997].forEach((v, i) => assert.ok(Math.abs(g[i] - v) < 1e-6, `gelu ${g[i]} vs ${v}`));
});

test('shape ops: views, gradients, copies', () => {
  const x = rnd([2, 3, 4], 6);
  gradcheck('reshape', (t) => T.reshape(t, [4, 6]), [x]);
  gradcheck('permute', (t) => T.permute(t, [2, 0, 1]), [x]);
  gradcheck('slice step', (t) => T.slice(t, 2, 1, 4, 2), [x]);
  gradcheck('expand', (t) => T.expand(t, [5, 2, 3, 4]), [x]);
  gradcheck('concat', (p, q) => T.concat([p, q], 1), [x, rnd([2, 2, 4], 7)]);
  gradcheck('chunk', (t) => T.mul(T.chunk(t, 2, 2)[0], T.chunk(t, 2, 2)[1]), [x]);
  gradcheck('pad asym', (t) => T.pad(t, [0, 1, 0, 1]), [x]);
  gradcheck('reshape of permuted', (t) => T.reshape(T.permute(t, [1, 0, 2]), [3, 8]), [x]);
  const v = T.transpose(T.arange(6).reshape([2, 3]));
  assert.equal(v.isContiguous(), false);
  assert.deepEqual(T.reshape(v, [6]).toArray(), [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(T.pad(T.ones([1, 2, 2]), [0, 1, 0, 1]).toArray(), [1, 1, 0, 1, 1, 0, 0, 0, 0]);
  assert.throws(() => T.reshape(x, [5, 5]), /reshape: cannot reshape \[2, 3, 4\]/);
  assert.throws(() => T.concat([x, rnd([3, 3, 4])], 2), /concat: shapes/);
});

test('reductions', () => {
  const x = rnd([3, 4, 5], 8);
  gradcheck('sum all', (t) => T.sum(t), [x]);
  gradcheck('sum axes 0,2', (t) => T.sum(t, [0, 2]), [x]);
  gradcheck('mean keepdim', (t) => T.mean(t, 1, true), [x]);
  gradcheck('var', (t) => T.variance(t, [1, 2]), [x]);
  gradcheck('max', (t) => T.max(t, 1).values, [x]);
  const m = T.tensor([[3, 1, 1, 5], [0, -2, 7, -2]]);
  assert.deepEqual(T.argmin(m, 1).toArray(), [1, 1]);
  assert.deepEqual(T.argmax(m, 1).toArray(), [3, 2]);
  assert.deepEqual(T.sum(m, 0).toArray(), [3, -1, 8, 3]);
});

test('matmul: batched, broadcast, transposed operands', () => {
  gradcheck('matmul 2d', T.matmul, [rnd([3, 4], 1), rnd([4, 5], 2)]);
  gradcheck('matmul batched bcast', T.matmul, [rnd([2, 3, 4], 3), rnd([4, 2], 4)]);
  gradcheck('matmul transposed', (a, b) => T.matmul(T.transpose(a), b), [rnd([2, 4, 3], 5), rnd([2, 4, 2], 6)]);
  gradcheck('matmul vec', T.matmul, [rnd([4], 7), rnd([4, 3], 8)]);
  gradcheck('linear', (x, w, b) => T.linear(x, w, b), [rnd([2, 3, 4], 9), rnd([5, 4], 10), rnd([5], 11)]);
  const c = T.matmul(T.tensor([[1, 2], [3, 4]]), T.tensor([[5, 6], [7, 8]]));
  assert.deepEqual(c.toArray(), [19, 22, 43, 50]);
  assert.throws(() => T.matmul(T.ones([2, 3]), T.ones([4, 2])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 2\]/);
});

test('autograd: accumulation, noGrad, detach, non-scalar backward errors', () => {
  const w = T.requireGrad(T.tensor([1, 2, 3]));
  T.sum(T.mul(w, w)).backward();
  T.sum(T.mul(w, 3)).backward();
  assert.deepEqual(w.grad!.toArray(), [5, 7, 9]); // 2w + 3, accumulated
  const y = T.noGrad(() => T.mul(w, 2));
  assert.equal(y.requiresGrad, false);
  assert.equal(T.detach(T.mul(w, 2)).requiresGrad, false);
  assert.throws(() => T.mul(w, 2).backward(), /backward: output of shape \[3\] is not a scalar/);
  assert.throws(() => T.add(T.ones([2, 3]), T.ones([4])), /add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
});

test('memory scopes: tidy disposes intermediates and keeps results', () => {
  const a = T.ones([4]);
  const kept = T.tidy(() => {
    const t1 = T.mul(a, 2);
    const t2 = T.add(t1, 1);
    return t2;
  });
  assert.deepEqual(kept.toArray(), [3, 3, 3, 3]);
  let inner: T.Tensor | null = null;
  T.tidy(() => {
    inner = T.mul(a, 5);
  });
  assert.throws(() => inner!.toArray(), /was disposed/);
  // a view keeps its storage alive after the base is disposed
  const base = T.arange(6);
  const view = T.reshape(base, [2, 3]);
  base.dispose();
  assert.deepEqual(view.toArray(), [0, 1, 2, 3, 4, 5]);
});

test('random: seeded generator is reproducible', () => {
  const a = T.randn([5], new T.Generator(42)).toArray();
  const b = T.randn([5], new T.Generator(42)).toArray();
  assert.deepEqual(a, b);
  const big = T.randn([20000], new T.Generator(1));
  const m = T.mean(big).item(), v = T.variance(big).item();
  assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m} var ${v}`);
});

test('integer views copy exactly (int64 beyond 2^53, int32 transposed)', () => {
  const big = T.tensor(new BigInt64Array([9007199254740993n, 1n, 2n, -9007199254740995n]), [2, 2]);
  const c = T.contiguousData(T.transpose(big)) as BigInt64Array;
  assert.deepEqual([...c], [9007199254740993n, 2n, 1n, -9007199254740995n]);
  const i32 = T.tensor(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  assert.deepEqual([...(T.contiguousData(T.transpose(i32)) as Int32Array)], [1, 4, 2, 5, 3, 6]);
});

test('buffer pool: disposed engine buffers are reused zero-filled; caller buffers are never pooled', () => {
  const a = T.full([1234], 7);
  const buf = a.data;
  a.dispose();
  const before = T.poolStats().reused;
  const b = T.empty([1234]);
  assert.equal(b.data, buf, 'the freed buffer is handed out again');
  assert.equal(T.poolStats().reused, before + 1);
  assert.deepEqual(new Set(b.toArray()), new Set([0]), 'reused buffers are zero-filled');
  // a view keeps the buffer out of the pool until it is disposed too
  const v = T.reshape(b, [2, 617]);
  b.dispose();
  assert.notEqual(T.empty([1234]).data, buf);
  v.dispose();
  assert.equal(T.empty([1234]).data, buf);
  // a caller's array is not recycled
  const mine = new Float32Array(999).fill(3);
  T.tensor(mine).dispose();
  assert.notEqual(T.empty([999]).data, mine);
  assert.equal(mine[0], 3);
});

test('copyInto: strided destinations (block and element paths) receive exactly the source values', () => {
  const src = T.arange(2 * 3 * 4 * 5).reshape([2, 3, 4, 5]);
  // channel slice of a wider tensor: dense [3,4,5] blocks
  const wide = T.zeros([2, 7, 4, 5]);
  T.copyInto(T.slice(wide, 1, 2, 5), src);
  assert.deepEqual(T.slice(wide, 1, 2, 5).toArray(), src.toArray());
  assert.equal(T.sum(wide).item(), T.sum(src).item());
  // every other column: element path
  const strided = T.zeros([2, 3, 4, 10]);
  T.copyInto(T.slice(strided, 3, 0, 10, 2), src);
  assert.deepEqual(T.slice(strided, 3, 0, 10, 2).toArray(), src.toArray());
  assert.equal(T.sum(T.slice(strided, 3, 1, 10, 2)).item(), 0);
  // permuted destination
  const perm = T.zeros([5, 4, 3, 2]);
  T.copyInto(T.permute(perm, [3, 2, 1, 0]), src);
  assert.deepEqual(T.permute(perm, [3, 2, 1, 0]).toArray(), src.toArray());
});

test('uninitialised op outputs are poisoned in tests (LDM_POOL_POISON=1), zero-filled tensors are not', (t) => {
  if (process.env.LDM_POOL_POISON !== '1') {
    t.skip('LDM_POOL_POISON is not 1 (scripts/run-tests.mjs sets it)');
    return;
  }
  assert.ok(T.Tensor.uninit([6]).toArray().every(Number.isNaN));
  const z = T.full([6], 5);
  z.dispose();
  assert.deepEqual(T.zeros([6]).toArray(), [0, 0, 0, 0, 0, 0]);
});
