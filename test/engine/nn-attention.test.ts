import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { setAttentionTiles } from '../../src/engine/kernels/attention.js';
import { assertClose, gradcheck, rnd } from '../helpers/gradcheck.js';

/** softmax(q kᵀ · scale) v composed from matmul and softmax (materialises the whole score matrix). */
function attentionRef(q: T.Tensor, k: T.Tensor, v: T.Tensor, scale: number): T.Tensor {
  return T.matmul(T.softmax(T.mul(T.matmul(q, T.transpose(k)), scale)), v);
}

function withTiles<R>(rows: number, cols: number, fn: () => R): R {
  const old = setAttentionTiles(rows, cols);
  try {
    return fn();
  } finally {
    setAttentionTiles(old[0], old[1]);
  }
}

const tileSets: [number, number][] = [[32, 64], [2, 3], [1, 1], [4, 2]];

test('attention: forward matches softmax(q kᵀ·scale)·v for several tile sizes', () => {
  const q = rnd([2, 5, 3], 1), k = rnd([2, 7, 3], 2), v = rnd([2, 7, 4], 3);
  const ref = attentionRef(q, k, v, 0.7).toArray();
  for (const [r, c] of tileSets) {
    const y = withTiles(r, c, () => T.attention(q, k, v, 0.7));
    assert.deepEqual(y.shape, [2, 5, 4]);
    assertClose(y.toArray(), ref, 1e-14, `attention tiles ${r}x${c}`);
  }
  // Large logits: the online softmax must not overflow.
  const big = T.mulScalar(q, 300);
  assertClose(withTiles(2, 3, () => T.attention(big, k, v, 1)).toArray(), attentionRef(big, k, v, 1).toArray(), 1e-12, 'large logits');
  // float32 through the same kernel.
  const y32 = T.attention(T.cast(q, 'float32'), T.cast(k, 'float32'), T.cast(v, 'float32'), 0.7);
  assertClose(y32.toArray(), ref, 1e-6, 'float32');
  // Hand case: equal scores → the mean of v.
  const u = T.attention(T.zeros([1, 1, 2], 'float64'), rnd([1, 3, 2], 4), T.tensor([[[1], [2], [6]]], undefined, 'float64'), 1);
  assert.deepEqual(u.toArray(), [3]);
});

test('attention: the kernel saves the row log-sum-exp', () => {
  const B = 2, Lq = 3, Lk = 5, D = 2, Dv = 3, scale = 0.9;
  const q = rnd([B, Lq, D], 5), k = rnd([B, Lk, D], 6), v = rnd([B, Lk, Dv], 7);
  const out = new Float64Array(B * Lq * Dv), lse = new Float64Array(B * Lq);
  withTiles(2, 2, () => T.tsKernels.attentionForward(q.data as Float64Array, k.data as Float64Array, v.data as Float64Array, B, Lq, Lk, D, Dv, scale, out, lse));
  const s = T.mul(T.matmul(q, T.transpose(k)), scale).toArray();
  const expected: number[] = [];
  for (let r = 0; r < B * Lq; r++) expected.push(Math.log(s.slice(r * Lk, r * Lk + Lk).reduce((a, x) => a + Math.exp(x), 0)));
  assertClose(Array.from(lse), expected, 1e-14, 'lse');
  assertClose(Array.from(out), attentionRef(q, k, v, scale).toArray(), 1e-14, 'out');
});

test('attention: gradients match finite differences (ragged tiles, non-contiguous inputs)', () => {
  const q = rnd([2, 5, 3], 8), k = rnd([2, 4, 3], 9), v = rnd([2, 4, 2], 10);
  for (const [r, c] of tileSets) withTiles(r, c, () => gradcheck(`attention ${r}x${c}`, (a, b, d) => T.attention(a, b, d, 0.6), [q, k, v]));
  // q and v as transposed views (the UNet passes [B, C, T] buffers transposed to [B, T, C]).
  const qt = T.transpose(rnd([2, 3, 5], 11)), vt = T.transpose(rnd([2, 2, 4], 12));
  assert.equal(qt.isContiguous(), false);
  withTiles(2, 3, () => gradcheck('attention non-contiguous', (a, b, d) => T.attention(a, b, d, 0.5), [qt, k, vt]));
  // Gradient through only some inputs.
  gradcheck('attention v only', (a, b, d) => T.attention(a, b, d, 1.1), [q, k, v], { constant: [0, 1] });
});

test('attention: bad calls name the op and shapes', () => {
  assert.throws(() => T.attention(rnd([2, 5, 3]), rnd([2, 4, 2]), rnd([2, 4, 2]), 1), /attention: shapes do not match: q \[2, 5, 3\], k \[2, 4, 2\], v \[2, 4, 2\]/);
  assert.throws(() => T.attention(rnd([5, 3]), rnd([4, 3]), rnd([4, 2]), 1), /attention: expected q \[B, Lq, D\]/);
  assert.throws(() => T.attention(T.zeros([1, 2, 3]), rnd([1, 2, 3]), rnd([1, 2, 3]), 1), /attention: dtype mismatch: q is float32 \[1, 2, 3\] but k is float64/);
});
