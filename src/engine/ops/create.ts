// Tensor creation and the small helpers every op uses (strided views of inputs, output allocation).

import { allocData, isFloat, type DType, type FloatArray, type TypedData } from '../dtype.js';
import { K } from '../kernels/index.js';
import type { Strided } from '../kernels/elementwise.js';
import { defaultGenerator, type Generator } from '../random.js';
import { fmt, forEachOffset, numel, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';

export function empty(shape: Shape, dtype: DType = 'float32'): Tensor {
  return Tensor.empty(shape, dtype);
}

export function zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
  return Tensor.empty(shape, dtype);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  if (dtype === 'int64') (t.data as BigInt64Array).fill(BigInt(value));
  else (t.data as FloatArray | Int32Array).fill(value);
  return t;
}

export function ones(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype);
}

export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, t.dtype);
}

/** A tensor from nested arrays or a typed array (a typed array is not copied). */
export function tensor(values: number[] | number[][] | number[][][] | number[][][][] | TypedData, shape?: Shape, dtype: DType = 'float32'): Tensor {
  if (ArrayBuffer.isView(values)) {
    return Tensor.fromData(values, shape ?? [values.length]);
  }
  const inferred: number[] = [];
  let v: unknown = values;
  while (Array.isArray(v)) {
    inferred.push(v.length);
    v = v[0];
  }
  const flat = (values as unknown[]).flat(Infinity) as number[];
  const s = shape ?? inferred;
  if (flat.length !== numel(s)) throw new RangeError(`tensor: ${flat.length} values do not fill shape ${fmt(s)}`);
  const data = allocData(dtype, flat.length);
  if (data instanceof BigInt64Array) flat.forEach((x, i) => (data[i] = BigInt(x)));
  else data.set(flat);
  return Tensor.fromData(data, s);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return full([], value, dtype);
}

export function arange(start: number, end?: number, step = 1, dtype: DType = 'float32'): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = Tensor.empty([n], dtype);
  const d = t.data;
  for (let i = 0; i < n; i++) {
    if (d instanceof BigInt64Array) d[i] = BigInt(start + i * step);
    else d[i] = start + i * step;
  }
  return t;
}

/** Standard normal samples from a seedable generator. */
export function randn(shape: Shape, gen: Generator = defaultGenerator, dtype: DType = 'float32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  const d = t.data as FloatArray;
  for (let i = 0; i < d.length; i++) d[i] = gen.normal();
  return t;
}

/** Uniform samples in [lo, hi). */
export function rand(shape: Shape, gen: Generator = defaultGenerator, lo = 0, hi = 1, dtype: DType = 'float32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  const d = t.data as FloatArray;
  for (let i = 0; i < d.length; i++) d[i] = lo + (hi - lo) * gen.uniform();
  return t;
}

export function randint(shape: Shape, low: number, high: number, gen: Generator = defaultGenerator, dtype: DType = 'int32'): Tensor {
  const t = Tensor.empty(shape, dtype);
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const v = low + gen.int(high - low);
    if (d instanceof BigInt64Array) d[i] = BigInt(v);
    else d[i] = v;
  }
  return t;
}

// ---- helpers for ops -----------------------------------------------------------------------------------

/** Kernel view of a float tensor with strides broadcast to `shape` (0 on broadcast dims). */
export function stridedAs(t: Tensor, shape: Shape): Strided {
  const nd = shape.length;
  const st = new Array<number>(nd).fill(0);
  const lead = nd - t.ndim;
  for (let i = 0; i < t.ndim; i++) st[lead + i] = t.shape[i] === 1 ? 0 : t.strides[i];
  return { data: t.data as FloatArray, offset: t.offset, strides: st };
}

export function floatData(t: Tensor, op: string): FloatArray {
  if (!isFloat(t.dtype)) throw new TypeError(`${op}: expected a float32/float64 tensor, got ${t.dtype} ${fmt(t.shape)}`);
  return t.data as FloatArray;
}

/** A contiguous copy of t's values, or t itself if it is already contiguous with offset 0 and the dtype matches. */
export function contiguousData(t: Tensor): TypedData {
  if (t.isContiguous() && t.offset === 0 && t.data.length === t.size) return t.data;
  const out = allocData(t.dtype, t.size);
  if (t.dtype === 'int64' || t.dtype === 'int32') {
    // Integer views are copied element by element (exact for int64 beyond 2^53).
    const src = t.data as BigInt64Array | Int32Array;
    const dst = out as BigInt64Array | Int32Array;
    forEachOffset(t.shape, t.strides, t.offset, (i, p) => (dst[i] = src[p]));
    return out;
  }
  if (t.isContiguous()) {
    (out as FloatArray).set((t.data as FloatArray).subarray(t.offset, t.offset + t.size) as never);
    return out;
  }
  K.copyStrided({ data: t.data as FloatArray, offset: t.offset, strides: t.strides }, out as FloatArray, t.shape);
  return out;
}

/** Convert dtype (no autograd across int casts). */
export function cast(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  const out = Tensor.empty(t.shape, dtype);
  const vals = t.toArray();
  const d = out.data;
  if (d instanceof BigInt64Array) vals.forEach((x, i) => (d[i] = BigInt(Math.trunc(x))));
  else if (d instanceof Int32Array) vals.forEach((x, i) => (d[i] = Math.trunc(x)));
  else d.set(vals);
  return out;
}
