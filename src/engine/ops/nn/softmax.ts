// softmax and logSoftmax along any axis (the kernels work on the last axis; other axes are moved last
// and back with one strided copy each way).

import { record } from '../../autograd.js';
import { allocData, type FloatArray } from '../../dtype.js';
import { K } from '../../kernels/index.js';
import { normAxis } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { contiguousData } from '../create.js';
import { checkFloat, dense } from './common.js';

type RowKernel = (x: FloatArray, rows: number, cols: number, out: FloatArray) => void;
type RowBackward = (y: FloatArray, gy: FloatArray, rows: number, cols: number, gx: FloatArray) => void;

/** Permutation that moves `axis` last. */
function lastPerm(nd: number, axis: number): number[] {
  const p = Array.from({ length: nd }, (_, i) => i).filter((i) => i !== axis);
  p.push(axis);
  return p;
}

/** t's values in the layout where `axis` is last (contiguous). */
function toLast(t: Tensor, axis: number): FloatArray {
  if (axis === t.ndim - 1) return dense(t);
  const p = lastPerm(t.ndim, axis);
  const v = t.view_(p.map((d) => t.shape[d]), p.map((d) => t.strides[d]), t.offset);
  const data = contiguousData(v) as FloatArray;
  v.dispose();
  return data;
}

/** Inverse of toLast: contiguous data in the axis-last layout → contiguous data in `shape`'s layout. */
function fromLast(data: FloatArray, shape: readonly number[], axis: number): FloatArray {
  if (axis === shape.length - 1) return data;
  const p = lastPerm(shape.length, axis);
  const pshape = p.map((d) => shape[d]);
  const tmp = Tensor.fromData(data, pshape);
  // View the permuted buffer with the original axis order.
  const strides = new Array<number>(shape.length);
  p.forEach((d, i) => (strides[d] = tmp.strides[i]));
  const v = tmp.view_(shape, strides, 0);
  const out = contiguousData(v) as FloatArray;
  v.dispose();
  tmp.dispose();
  return out;
}

function rowOp(name: string, x: Tensor, axis: number, fwd: RowKernel, bwd: RowBackward): Tensor {
  checkFloat(name, { input: x });
  if (x.ndim === 0) throw new RangeError(`${name}: input is a scalar`);
  const a = normAxis(axis, x.ndim, name);
  const cols = x.shape[a], rows = cols === 0 ? 0 : x.size / cols;
  const yl = allocData(x.dtype, x.size) as FloatArray;
  fwd(toLast(x, a), rows, cols, yl);
  const out = Tensor.fromData(fromLast(yl, x.shape, a), x.shape);
  return record(out, name, [x], (g) => {
    const gl = allocData(x.dtype, x.size) as FloatArray;
    bwd(yl, toLast(g, a), rows, cols, gl);
    return [Tensor.fromData(fromLast(gl, x.shape, a), x.shape)];
  });
}

/** exp(x − max) / Σ exp(x − max) along `axis`. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return rowOp('softmax', x, axis, K.softmaxForward, K.softmaxBackward);
}

/** x − logsumexp(x) along `axis`. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return rowOp('logSoftmax', x, axis, K.logSoftmaxForward, K.logSoftmaxBackward);
}
