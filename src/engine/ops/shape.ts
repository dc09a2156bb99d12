// Views and layout ops: reshape, permute, slice, expand, concat, split, pad. Views share storage
// (no copy); reshape copies only when the input's layout makes a view impossible.

import { record } from '../autograd.js';
import { K } from '../kernels/index.js';
import { fmt, forEachOffset, normAxis, numel, sameShape, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import type { FloatArray, TypedData } from '../dtype.js';
import { contiguousData } from './create.js';

/** A contiguous tensor with the same values (t itself when already contiguous). */
export function contiguous(t: Tensor): Tensor {
  if (t.isContiguous()) return t;
  const out = Tensor.fromData(contiguousData(t), t.shape);
  return record(out, 'contiguous', [t], (g) => [g]);
}

function resolveShape(shape: Shape, n: number, op: string, from: Shape): number[] {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer !== out.lastIndexOf(-1)) throw new RangeError(`${op}: only one dimension can be -1, got ${fmt(shape)}`);
  if (infer >= 0) {
    const rest = numel(out.filter((_, i) => i !== infer));
    if (rest === 0 || n % rest !== 0) throw new RangeError(`${op}: cannot reshape ${fmt(from)} into ${fmt(shape)}`);
    out[infer] = n / rest;
  }
  if (numel(out) !== n) throw new RangeError(`${op}: cannot reshape ${fmt(from)} (${n} elements) into ${fmt(shape)}`);
  return out;
}

/** Strides for viewing t as `shape` without copying, or null if impossible (PyTorch's computeStride). */
function viewStrides(t: Tensor, shape: number[]): number[] | null {
  const oldShape = t.shape, oldStrides = t.strides;
  const newStrides = new Array<number>(shape.length);
  if (t.size === 0) return shape.map(() => 1);
  let viewD = shape.length - 1;
  let chunkBase = oldStrides[oldStrides.length - 1] ?? 1;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = oldShape.length - 1; d >= 0; d--) {
    tensorNumel *= oldShape[d];
    if (d === 0 || (oldShape[d - 1] !== 1 && oldStrides[d - 1] !== tensorNumel * chunkBase)) {
      while (viewD >= 0 && (viewNumel < tensorNumel || shape[viewD] === 1)) {
        newStrides[viewD] = viewNumel * chunkBase;
        viewNumel *= shape[viewD];
        viewD--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (d > 0) {
        chunkBase = oldStrides[d - 1];
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  if (viewD !== -1) return null;
  return newStrides;
}

export function reshape(t: Tensor, shape: Shape): Tensor {
  const s = resolveShape(shape, t.size, 'reshape', t.shape);
  if (sameShape(s, t.shape)) return t;
  const st = oldRankScalar(t) ? null : viewStrides(t, s);
  const out = st ? t.view_(s, st, t.offset) : Tensor.fromData(contiguousData(t), s);
  return record(out, 'reshape', [t], (g) => [reshape(g, t.shape)]);
}

function oldRankScalar(t: Tensor): boolean {
  return t.ndim === 0;
}

export function flatten(t: Tensor, start = 0, end = -1): Tensor {
  if (t.ndim === 0) return reshape(t, [1]);
  const s = normAxis(start, t.ndim, 'flatten'), e = normAxis(end, t.ndim, 'flatten');
  const shape = [...t.shape.slice(0, s), numel(t.shape.slice(s, e + 1)), ...t.shape.slice(e + 1)];
  return reshape(t, shape);
}

export function unsqueeze(t: Tensor, axis: number): Tensor {
  const a = normAxis(axis, t.ndim + 1, 'unsqueeze');
  const shape = [...t.shape];
  shape.splice(a, 0, 1);
  return reshape(t, shape);
}

export function squeeze(t: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(t, t.shape.filter((s) => s !== 1));
  const a = normAxis(axis, t.ndim, 'squeeze');
  if (t.shape[a] !== 1) return t;
  return reshape(t, t.shape.filter((_, i) => i !== a));
}

export function permute(t: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== t.ndim) throw new RangeError(`permute: ${dims.length} dims given for a tensor of shape ${fmt(t.shape)}`);
  const p = dims.map((d) => normAxis(d, t.ndim, 'permute'));
  if (new Set(p).size !== p.length) throw new RangeError(`permute: [${dims.join(', ')}] is not a permutation`);
  const out = t.view_(p.map((d) => t.shape[d]), p.map((d) => t.strides[d]), t.offset);
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => (inv[d] = i));
  return record(out, 'permute', [t], (g) => [permute(g, inv)]);
}

export function transpose(t: Tensor, a = -2, b = -1): Tensor {
  const p = Array.from({ length: t.ndim }, (_, i) => i);
  const x = normAxis(a, t.ndim, 'transpose'), y = normAxis(b, t.ndim, 'transpose');
  [p[x], p[y]] = [p[y], p[x]];
  return permute(t, p);
}

/** t[..., start:end:step, ...] along `axis` (a view). */
export function slice(t: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  const a = normAxis(axis, t.ndim, 'slice');
  const n = t.shape[a];
  let s = start < 0 ? start + n : start;
  let e = end === undefined ? n : end < 0 ? end + n : end;
  s = Math.min(Math.max(s, 0), n);
  e = Math.min(Math.max(e, s), n);
  if (step < 1 || !Number.isInteger(step)) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  const len = Math.ceil((e - s) / step);
  const shape = [...t.shape];
  shape[a] = len;
  const strides = [...t.strides];
  strides[a] *= step;
  const out = t.view_(shape, strides, t.offset + s * t.strides[a]);
  return record(out, 'slice', [t], (g) => {
    // A unit-step slice whose rows are long (a split into channel blocks, a concat's gradient) zeroes only
    // the rows outside it; the rest is overwritten by g.
    const outer = numel(t.shape.slice(0, a)), inner = numel(t.shape.slice(a + 1));
    const rowsOnly = step === 1 && inner >= 64 && len > 0;
    const full = rowsOnly ? Tensor.uninit(t.shape, g.dtype) : Tensor.empty(t.shape, g.dtype);
    if (rowsOnly) {
      const d = full.data as FloatArray, blk = n * inner;
      for (let o = 0; o < outer; o++) {
        if (s > 0) d.fill(0, o * blk, o * blk + s * inner);
        if (s + len < n) d.fill(0, o * blk + (s + len) * inner, (o + 1) * blk);
      }
    }
    const view = full.view_(shape, strides.map((x, i) => (i === a ? full.strides[a] * step : full.strides[i])), s * full.strides[a]);
    copyInto(view, g);
    view.dispose();
    return [full];
  });
}

/** Copy src's values into the (possibly strided) destination view dst of the same shape. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (!sameShape(dst.shape, src.shape)) throw new RangeError(`copyInto: ${fmt(src.shape)} into ${fmt(dst.shape)}`);
  // Copying between views of one storage goes through a fresh copy of the source (they may overlap).
  if (src.data === dst.data) {
    copyValues(dst, contiguousData(src).slice());
    return;
  }
  const float = src.dtype === 'float32' || src.dtype === 'float64';
  if (float && src.dtype === dst.dtype && !src.isContiguous() && dst.isContiguous()) {
    // A strided source (e.g. a transposed gradient) is gathered straight into the destination.
    const d = dst.data as FloatArray;
    K.copyStrided({ data: src.data as FloatArray, offset: src.offset, strides: src.strides }, d.subarray(dst.offset, dst.offset + dst.size), src.shape);
    return;
  }
  // Source values in row-major order: a contiguous source is read in place (at its offset); a strided
  // float source is gathered into a pooled temporary (given back below).
  let tmp: Tensor | null = null;
  let vals: TypedData;
  if (src.isContiguous()) vals = src.data.subarray(src.offset, src.offset + src.size);
  else if (float) {
    tmp = Tensor.uninit(src.shape, src.dtype);
    K.copyStrided({ data: src.data as FloatArray, offset: src.offset, strides: src.strides }, tmp.data as FloatArray, src.shape);
    vals = tmp.data;
  } else vals = contiguousData(src);
  try {
    copyValues(dst, vals);
  } finally {
    tmp?.dispose();
  }
}

function copyValues(dst: Tensor, vals: TypedData): void {
  if (dst.isContiguous()) {
    (dst.data as Float32Array).set(vals as Float32Array, dst.offset);
    return;
  }
  const d = dst.data as Float32Array;
  const v = vals as Float32Array;
  // The largest suffix of dims over which dst is dense is copied as one block per outer index
  // (a channel concat or a slice's gradient writes whole [C_i, H, W] blocks).
  let block = 1;
  let k = dst.ndim;
  while (k > 0 && (dst.shape[k - 1] === 1 || dst.strides[k - 1] === block)) block *= dst.shape[--k];
  if (block >= 8) {
    forEachOffset(dst.shape.slice(0, k), dst.strides.slice(0, k), dst.offset, (i, p) => d.set(v.subarray(i * block, (i + 1) * block), p));
    return;
  }
  forEachOffset(dst.shape, dst.strides, dst.offset, (i, p) => (d[p] = v[i]));
}

/** Broadcast view to `shape` (stride 0 on expanded dims). -1 keeps a dim. */
export function expand(t: Tensor, shape: Shape): Tensor {
  const lead = shape.length - t.ndim;
  if (lead < 0) throw new RangeError(`expand: cannot expand ${fmt(t.shape)} to fewer dims ${fmt(shape)}`);
  const outShape = shape.map((s, i) => (s === -1 ? t.shape[i - lead] : s));
  const strides = outShape.map((s, i) => {
    if (i < lead) return 0;
    const ts = t.shape[i - lead];
    if (ts === s) return t.strides[i - lead];
    if (ts === 1) return 0;
    throw new RangeError(`expand: cannot expand ${fmt(t.shape)} to ${fmt(shape)}`);
  });
  if (sameShape(outShape, t.shape)) return t;
  const out = t.view_(outShape, strides, t.offset);
  return record(out, 'expand', [t], (g) => [g]); // autograd reduces g to t's shape (sumTo)
}

export function concat(ts: readonly Tensor[], axis = 0): Tensor {
  if (ts.length === 0) throw new RangeError('concat: no tensors given');
  const a = normAxis(axis, ts[0].ndim, 'concat');
  const dtype = ts[0].dtype;
  for (const t of ts) {
    if (t.ndim !== ts[0].ndim || t.shape.some((s, i) => i !== a && s !== ts[0].shape[i]) || t.dtype !== dtype) {
      throw new RangeError(`concat: shapes ${ts.map((x) => `${fmt(x.shape)} ${x.dtype}`).join(', ')} differ outside axis ${a}`);
    }
  }
  const shape = [...ts[0].shape];
  shape[a] = ts.reduce((s, t) => s + t.shape[a], 0);
  const out = Tensor.uninit(shape, dtype); // every element is written by the copies below
  let off = 0;
  for (const t of ts) {
    const dst = out.view_(t.shape, out.strides, off * out.strides[a]);
    copyInto(dst, t);
    dst.dispose();
    off += t.shape[a];
  }
  return record(out, 'concat', [...ts], (g) => split(g, ts.map((t) => t.shape[a]), a));
}

/** Split into pieces of the given sizes along axis (views). */
export function split(t: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, t.ndim, 'split');
  const total = sizes.reduce((x, y) => x + y, 0);
  if (total !== t.shape[a]) throw new RangeError(`split: sizes [${sizes.join(', ')}] do not add up to ${t.shape[a]} (axis ${a} of ${fmt(t.shape)})`);
  const out: Tensor[] = [];
  let off = 0;
  for (const s of sizes) {
    out.push(slice(t, a, off, off + s));
    off += s;
  }
  return out;
}

export function chunk(t: Tensor, n: number, axis = 0): Tensor[] {
  const a = normAxis(axis, t.ndim, 'chunk');
  const size = Math.ceil(t.shape[a] / n);
  const sizes: number[] = [];
  for (let left = t.shape[a]; left > 0; left -= size) sizes.push(Math.min(size, left));
  return split(t, sizes, a);
}

/** Constant padding of the last dims, PyTorch F.pad order: [left, right, top, bottom, ...]. Negative pads crop. */
export function pad(t: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > t.ndim) throw new RangeError(`pad: invalid pads [${pads.join(', ')}] for ${fmt(t.shape)}`);
  const shape = [...t.shape];
  const before = new Array<number>(t.ndim).fill(0);
  for (let i = 0; i < pads.length / 2; i++) {
    const d = t.ndim - 1 - i;
    before[d] = pads[2 * i];
    shape[d] += pads[2 * i] + pads[2 * i + 1];
  }
  const out = Tensor.empty(shape, t.dtype);
  if (value !== 0) (out.data as Float32Array).fill(value);
  // Region of t that lands inside out (handles negative pads as crops).
  let src = t;
  let dstOffset = 0;
  const dstShape = [...t.shape];
  for (let d = 0; d < t.ndim; d++) {
    const lo = Math.max(0, -before[d]);
    const hi = Math.min(t.shape[d], shape[d] - before[d]);
    if (lo !== 0 || hi !== t.shape[d]) src = src.view_(replaceAt(src.shape, d, hi - lo), src.strides, src.offset + lo * src.strides[d]);
    dstShape[d] = hi - lo;
    dstOffset += Math.max(0, before[d]) * out.strides[d];
  }
  const dst = out.view_(dstShape, out.strides, dstOffset);
  copyInto(dst, src);
  dst.dispose();
  return record(out, 'pad', [t], (g) => [pad(g, pads.map((p) => -p))]);
}

function replaceAt(shape: readonly number[], i: number, v: number): number[] {
  const s = [...shape];
  s[i] = v;
  return s;
}

void K;
