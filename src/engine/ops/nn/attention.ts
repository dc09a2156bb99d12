// Scaled dot-product attention with a memory-bounded (flash-attention style) kernel.

import { record } from '../../autograd.js';
import { allocData, type FloatArray } from '../../dtype.js';
import { K } from '../../kernels/index.js';
import { fmt } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { checkFloat, dense, positiveInt } from './common.js';

/**
 * softmax(q kᵀ · scale) v for q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv] → [B, Lq, Dv]. The Lq × Lk score
 * matrix is never formed: the kernel streams key blocks with an online softmax and saves only the
 * per-row log-sum-exp for the backward.
 *
 * heads > 1: multi-head attention on the projections as they come, q [B, Lq, H·D], k [B, Lk, H·D],
 * v [B, Lk, H·Dv] → [B, Lq, H·Dv], head h using columns h·D … h·D + D − 1 (the reference's
 * rearrange 'b n (h d) -> (b h) n d' before and its inverse after, without either copy).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, scale: number, heads = 1): Tensor {
  checkFloat('attention', { q, k, v });
  const H = positiveInt('attention', 'heads', heads);
  const layout = H === 1 ? 'q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv]' : `q [B, Lq, ${H}·D], k [B, Lk, ${H}·D], v [B, Lk, ${H}·Dv]`;
  if (q.ndim !== 3 || k.ndim !== 3 || v.ndim !== 3) {
    throw new RangeError(`attention: expected ${layout}, got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`);
  }
  const [B, Lq, QW] = q.shape;
  const [Bk, Lk, KW] = k.shape;
  const [Bv, Lv, VW] = v.shape;
  if (Bk !== B || Bv !== B || KW !== QW || Lv !== Lk || QW % H !== 0 || VW % H !== 0) {
    throw new RangeError(`attention: shapes do not match: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} (need ${layout})`);
  }
  if (!Number.isFinite(scale)) throw new RangeError(`attention: scale must be finite, got ${scale}`);
  const D = QW / H, Dv = VW / H;
  const qd = dense(q), kd = dense(k), vd = dense(v);
  const out = Tensor.uninit([B, Lq, VW], q.dtype);
  const lse = allocData(q.dtype, B * H * Lq) as FloatArray;
  K.attentionForward(qd, kd, vd, B * H, Lq, Lk, D, Dv, scale, out.data as FloatArray, lse, H);
  const od = out.data as FloatArray;
  return record(out, 'attention', [q, k, v], (g) => {
    const gq = Tensor.uninit(q.shape, q.dtype), gk = Tensor.uninit(k.shape, q.dtype), gv = Tensor.uninit(v.shape, q.dtype);
    K.attentionBackward(qd, kd, vd, od, dense(g), lse, B * H, Lq, Lk, D, Dv, scale,
      gq.data as FloatArray, gk.data as FloatArray, gv.data as FloatArray, H);
    return [q.requiresGrad ? gq : null, k.requiresGrad ? gk : null, v.requiresGrad ? gv : null];
  });
}
