// Scaled dot-product attention with a memory-bounded (flash-attention style) kernel.

import { record } from '../../autograd.js';
import { allocData, type FloatArray } from '../../dtype.js';
import { K } from '../../kernels/index.js';
import { fmt } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { checkFloat, dense } from './common.js';

/**
 * softmax(q kᵀ · scale) v for q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv] → [B, Lq, Dv]. The Lq × Lk score
 * matrix is never formed: the kernel streams key blocks with an online softmax and saves only the
 * per-row log-sum-exp for the backward.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  checkFloat('attention', { q, k, v });
  if (q.ndim !== 3 || k.ndim !== 3 || v.ndim !== 3) {
    throw new RangeError(`attention: expected q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv], got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`);
  }
  const [B, Lq, D] = q.shape;
  const [Bk, Lk, Dk] = k.shape;
  const [Bv, Lv, Dv] = v.shape;
  if (Bk !== B || Bv !== B || Dk !== D || Lv !== Lk) {
    throw new RangeError(`attention: shapes do not match: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} (need q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv])`);
  }
  if (!Number.isFinite(scale)) throw new RangeError(`attention: scale must be finite, got ${scale}`);
  const qd = dense(q), kd = dense(k), vd = dense(v);
  const out = Tensor.uninit([B, Lq, Dv], q.dtype);
  const lse = allocData(q.dtype, B * Lq) as FloatArray;
  K.attentionForward(qd, kd, vd, B, Lq, Lk, D, Dv, scale, out.data as FloatArray, lse);
  const od = out.data as FloatArray;
  return record(out, 'attention', [q, k, v], (g) => {
    const gq = Tensor.uninit(q.shape, q.dtype), gk = Tensor.uninit(k.shape, q.dtype), gv = Tensor.uninit(v.shape, q.dtype);
    K.attentionBackward(qd, kd, vd, od, dense(g), lse, B, Lq, Lk, D, Dv, scale,
      gq.data as FloatArray, gk.data as FloatArray, gv.data as FloatArray);
    return [q.requiresGrad ? gq : null, k.requiresGrad ? gk : null, v.requiresGrad ? gv : null];
  });
}
