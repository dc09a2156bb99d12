// Integer-indexed lookups: embedding, indexSelect and gather (PyTorch semantics), whose gradients
// scatter-add into the source.

import { record } from '../../autograd.js';
import { allocData, type FloatArray } from '../../dtype.js';
import { contiguousStrides, fmt, normAxis, numel } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { contiguousData } from '../create.js';
import { checkFloat, dense } from './common.js';

/** Contiguous index values of an int32/int64 tensor, each checked to lie in [0, size). */
function indices(op: string, idx: Tensor, size: number, what: string): Int32Array {
  if (idx.dtype !== 'int32' && idx.dtype !== 'int64') {
    throw new TypeError(`${op}: indices must be int32 or int64, got ${idx.dtype} ${fmt(idx.shape)}`);
  }
  const raw = contiguousData(idx);
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = Number(raw[i]);
    if (!(v >= 0 && v < size)) {
      throw new RangeError(`${op}: index ${v} (position ${i} of indices ${fmt(idx.shape)}) is out of range for ${what}`);
    }
    out[i] = v;
  }
  return out;
}

/** weight[idx]: weight [V, D], idx int32/int64 of any shape → [...idx.shape, D]. */
export function embedding(weight: Tensor, idx: Tensor): Tensor {
  checkFloat('embedding', { weight });
  if (weight.ndim !== 2) throw new RangeError(`embedding: weight must be [V, D], got ${fmt(weight.shape)}`);
  const [V, D] = weight.shape;
  const ids = indices('embedding', idx, V, `${V} embeddings (weight ${fmt(weight.shape)})`);
  const wd = dense(weight);
  const out = Tensor.empty([...idx.shape, D], weight.dtype);
  const od = out.data as FloatArray;
  for (let i = 0; i < ids.length; i++) od.set(wd.subarray(ids[i] * D, ids[i] * D + D), i * D);
  return record(out, 'embedding', [weight], (g) => {
    const gd = dense(g);
    const gw = Tensor.empty(weight.shape, weight.dtype);
    const gwd = gw.data as FloatArray;
    for (let i = 0; i < ids.length; i++) {
      const src = i * D, dst = ids[i] * D;
      for (let j = 0; j < D; j++) gwd[dst + j] += gd[src + j];
    }
    return [gw];
  });
}

/** torch.index_select(x, axis, idx): idx 1-D int32/int64; the axis takes idx.length entries x[..., idx[i], ...]. */
export function indexSelect(x: Tensor, axis: number, idx: Tensor): Tensor {
  checkFloat('indexSelect', { input: x });
  const a = normAxis(axis, x.ndim, 'indexSelect');
  if (idx.ndim > 1) throw new RangeError(`indexSelect: indices must be 1-D, got ${fmt(idx.shape)}`);
  const A = x.shape[a];
  const ids = indices('indexSelect', idx, A, `axis ${a} of input ${fmt(x.shape)} (size ${A})`);
  const outer = numel(x.shape.slice(0, a)), inner = numel(x.shape.slice(a + 1));
  const n = ids.length;
  const shape = [...x.shape];
  shape[a] = n;
  const xd = dense(x);
  const out = Tensor.empty(shape, x.dtype);
  const od = out.data as FloatArray;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const src = (o * A + ids[i]) * inner;
      od.set(xd.subarray(src, src + inner), (o * n + i) * inner);
    }
  }
  return record(out, 'indexSelect', [x], (g) => {
    const gd = dense(g);
    const gx = Tensor.empty(x.shape, x.dtype);
    const gxd = gx.data as FloatArray;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < n; i++) {
        const dst = (o * A + ids[i]) * inner, src = (o * n + i) * inner;
        for (let j = 0; j < inner; j++) gxd[dst + j] += gd[src + j];
      }
    }
    return [gx];
  });
}

/**
 * torch.gather(x, axis, idx): out[p] = x[p with coordinate `axis` replaced by idx[p]]; idx has x's rank and
 * idx.shape[d] ≤ x.shape[d] for every d ≠ axis; the output has idx's shape.
 */
export function gather(x: Tensor, axis: number, idx: Tensor): Tensor {
  checkFloat('gather', { input: x });
  const a = normAxis(axis, x.ndim, 'gather');
  if (idx.ndim !== x.ndim || idx.shape.some((s, d) => d !== a && s > x.shape[d])) {
    throw new RangeError(`gather: indices ${fmt(idx.shape)} must have the rank of input ${fmt(x.shape)} and no larger size outside axis ${a}`);
  }
  const ids = indices('gather', idx, x.shape[a], `axis ${a} of input ${fmt(x.shape)} (size ${x.shape[a]})`);
  // Offsets into the contiguous x for every index position.
  const xs = contiguousStrides(x.shape);
  const pos = new Int32Array(ids.length);
  const nd = x.ndim;
  const at = new Array<number>(nd).fill(0);
  for (let i = 0; i < ids.length; i++) {
    let p = ids[i] * xs[a];
    for (let d = 0; d < nd; d++) if (d !== a) p += at[d] * xs[d];
    pos[i] = p;
    for (let d = nd - 1; d >= 0; d--) {
      if (++at[d] < idx.shape[d]) break;
      at[d] = 0;
    }
  }
  const xd = dense(x);
  const out = Tensor.fromData(allocData(x.dtype, ids.length), idx.shape);
  const od = out.data as FloatArray;
  for (let i = 0; i < pos.length; i++) od[i] = xd[pos[i]];
  return record(out, 'gather', [x], (g) => {
    const gd = dense(g);
    const gx = Tensor.empty(x.shape, x.dtype);
    const gxd = gx.data as FloatArray;
    for (let i = 0; i < pos.length; i++) gxd[pos[i]] += gd[i];
    return [gx];
  });
}
