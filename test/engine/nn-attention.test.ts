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

test('attention with interleaved heads equals splitting b n (h d) → (b h) n d, attending and merging back', () => {
  const split = (x: T.Tensor, h: number) => {
    const [B, N, W] = x.shape;
    return T.reshape(T.permute(T.reshape(x, [B, N, h, W / h]), [0, 2, 1, 3]), [B * h, N, W / h]);
  };
  const merge = (x: T.Tensor, h: number) => {
    const [BH, N, d] = x.shape;
    return T.reshape(T.permute(T.reshape(x, [BH / h, h, N, d]), [0, 2, 1, 3]), [BH / h, N, h * d]);
  };
  const H = 3;
  const q = rnd([2, 5, 3 * H], 20), k = rnd([2, 4, 3 * H], 21), v = rnd([2, 4, 2 * H], 22);
  const composed = (a: T.Tensor, b: T.Tensor, c: T.Tensor) => merge(T.attention(split(a, H), split(b, H), split(c, H), 0.6), H);
  for (const [r, c] of tileSets) {
    withTiles(r, c, () => {
      assertClose(T.attention(q, k, v, 0.6, H).toArray(), composed(q, k, v).toArray(), 1e-14, `heads forward ${r}x${c}`);
      gradcheck(`attention heads ${r}x${c}`, (a, b, d) => T.attention(a, b, d, 0.6, H), [q, k, v]);
    });
  }
  // float32 (the native kernel where it is built) against the float64 composition.
  const f = (t: T.Tensor) => T.cast(t, 'float32');
  assertClose(T.attention(f(q), f(k), f(v), 0.6, H).toArray(), composed(q, k, v).toArray(), 2e-6, 'heads float32');
  assert.throws(() => T.attention(q, k, rnd([2, 4, 7], 23), 0.6, H), /need q \[B, Lq, 3·D\]/);
  assert.throws(() => T.attention(q, k, v, 0.6, 0), /heads/);
});
