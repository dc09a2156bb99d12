// Small helpers shared by the NN ops: dtype/shape validation with errors that name the op, and
// contiguous float views of inputs for the kernels.

import { isFloat, type FloatArray } from '../../dtype.js';
import { fmt } from '../../shape.js';
import { K } from '../../kernels/index.js';
import { Tensor } from '../../tensor.js';
import { contiguousData } from '../create.js';

/** Throws unless every given tensor is float32/float64 and all share one dtype. */
export function checkFloat(op: string, named: Record<string, Tensor | null | undefined>): void {
  let first: [string, Tensor] | null = null;
  for (const [name, t] of Object.entries(named)) {
    if (!t) continue;
    if (!isFloat(t.dtype)) throw new TypeError(`${op}: ${name} must be float32 or float64, got ${t.dtype} ${fmt(t.shape)}`);
    if (!first) first = [name, t];
    else if (t.dtype !== first[1].dtype) {
      throw new TypeError(`${op}: dtype mismatch: ${first[0]} is ${first[1].dtype} ${fmt(first[1].shape)} but ${name} is ${t.dtype} ${fmt(t.shape)}`);
    }
  }
}

/** Contiguous float data of t (t's own buffer when already dense at offset 0). */
export function dense(t: Tensor): FloatArray {
  return contiguousData(t) as FloatArray;
}

/**
 * fn(dense values of t) where the values are only needed during the call: a contiguous t is read in place
 * (at its offset), a strided one is gathered into a pooled buffer that is given back afterwards.
 */
export function withDense<R>(t: Tensor, fn: (d: FloatArray) => R): R {
  const data = t.data as FloatArray;
  if (t.isContiguous()) return fn(t.offset === 0 && data.length === t.size ? data : data.subarray(t.offset, t.offset + t.size));
  const tmp = Tensor.uninit(t.shape, t.dtype);
  try {
    K.copyStrided({ data, offset: t.offset, strides: t.strides }, tmp.data as FloatArray, t.shape);
    return fn(tmp.data as FloatArray);
  } finally {
    tmp.dispose();
  }
}

/** dense(t), or null for a missing tensor. */
export function denseOrNull(t: Tensor | null | undefined): FloatArray | null {
  return t ? dense(t) : null;
}

export function positiveInt(op: string, what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${op}: ${what} must be a positive integer, got ${v}`);
  return v;
}
