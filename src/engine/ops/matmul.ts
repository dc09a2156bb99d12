// Matrix products: matmul with broadcast batch dims, linear (x Wᵀ + b), and their gradients.
// Operands whose last two dims are a transposed contiguous matrix are passed to the GEMM kernel as
// transposed, without copying.

import { record } from '../autograd.js';
import { promote, type FloatArray } from '../dtype.js';
import { K } from '../kernels/index.js';
import { broadcastShapes, fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { linearWeightPack } from '../weight-cache.js';
import { contiguousData } from './create.js';
import { sum } from './reduce.js';
import { expand, reshape, transpose } from './shape.js';

interface Operand {
  data: FloatArray;
  offset: number;
  trans: boolean;
  ld: number;
  stride: number; // batch stride (0 = broadcast)
}

// Describe a [..., R, C] operand for GEMM: a contiguous matrix per batch (row-major or transposed).
function operand(t: Tensor, batchShape: number[], rows: number, cols: number): Operand {
  const nd = t.ndim;
  const batchN = numel(t.shape.slice(0, nd - 2));
  const sr = t.strides[nd - 2], sc = t.strides[nd - 1];
  const rowMajor = sc === 1 && (sr === cols || rows === 1);
  const colMajor = !rowMajor && sr === 1 && (sc === rows || cols === 1);
  if (rowMajor || colMajor) {
    // Batch dims must be either absent/size-1 (broadcast) or laid out densely with a single stride.
    const bdims = t.shape.slice(0, nd - 2);
    const bstr = t.strides.slice(0, nd - 2);
    let dense = true;
    let acc = rows * cols;
    for (let i = bdims.length - 1; i >= 0; i--) {
      if (bdims[i] === 1) continue;
      if (bstr[i] !== acc) dense = false;
      acc *= bdims[i];
    }
    const full = numel(batchShape);
    if (dense && (batchN === full || batchN === 1)) {
      return {
        data: t.data as FloatArray,
        offset: t.offset,
        trans: colMajor,
        ld: colMajor ? (cols === 1 ? rows : sc) : rowMajor && rows === 1 ? cols : sr,
        stride: batchN === 1 ? 0 : rows * cols,
      };
    }
  }
  // General case: materialise the broadcast batch as a contiguous buffer.
  const ex = expand(t, [...batchShape, rows, cols]);
  const data = contiguousData(ex) as FloatArray;
  return { data, offset: 0, trans: false, ld: cols, stride: numel(batchShape) === 1 ? 0 : rows * cols };
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return product(a, b, null);
}

// a @ b (+ bias on every row, added by the GEMM as it writes each tile: F.linear's addmm without a pass of its own).
// `weight`: b is this weight's transposed view (a linear layer), whose packed form a weight cache may keep.
function product(a: Tensor, b: Tensor, bias: Tensor | null, weight: Tensor | null = null): Tensor {
  const dtype = promote(a.dtype, b.dtype, 'matmul');
  if (a.dtype !== b.dtype) throw new TypeError(`matmul: dtype mismatch ${a.dtype} vs ${b.dtype}`);
  if (a.ndim < 1 || b.ndim < 1) throw new RangeError(`matmul: scalars are not matrices (${fmt(a.shape)} @ ${fmt(b.shape)})`);
  // Vectors become matrices and the added dim is removed again at the end.
  if (a.ndim === 1 || b.ndim === 1) {
    const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
    const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
    const r = product(a2, b2, bias, weight);
    const s = [...r.shape];
    if (b.ndim === 1) s.pop();
    if (a.ndim === 1) s.splice(s.length - (b.ndim === 1 ? 1 : 2), 1);
    return reshape(r, s);
  }
  const M = a.shape[a.ndim - 2], Ka = a.shape[a.ndim - 1];
  const Kb = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
  if (Ka !== Kb) throw new RangeError(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const out = Tensor.uninit([...batchShape, M, N], dtype);
  const A = operand(a, batchShape, M, Ka);
  const B = operand(b, batchShape, Ka, N);
  K.gemm({
    transA: A.trans, transB: B.trans, M, N, K: Ka, alpha: 1,
    A: A.data, aOffset: A.offset, lda: A.ld, strideA: A.stride,
    B: B.data, bOffset: B.offset, ldb: B.ld, strideB: B.stride,
    beta: 0, C: out.data as FloatArray, cOffset: 0, ldc: N, strideC: M * N,
    batch: numel(batchShape), bias: bias ? (contiguousData(bias) as FloatArray) : null,
    packedB: weight && B.stride === 0 ? linearWeightPack(weight, B, Ka, N) : null,
  });
  // An operand shared by every batch entry (a weight) gets the batch-summed product as its gradient,
  // accumulated by the GEMM itself instead of a [batch, R, C] product summed down afterwards.
  const shared = (t: Tensor) => numel(batchShape) > 1 && numel(t.shape.slice(0, -2)) === 1;
  return record(out, bias ? 'linear' : 'matmul', [a, b, bias], (g) => [
    !a.requiresGrad ? null : shared(a) ? reshape(batchSummedMatmul(g, transpose(b)), a.shape) : matmul(g, transpose(b)),
    !b.requiresGrad ? null : shared(b) ? reshape(batchSummedMatmul(transpose(a), g), b.shape) : matmul(transpose(a), g),
    bias?.requiresGrad ? sum(g, g.shape.slice(0, -1).map((_, i) => i)) : null,
  ]);
}

/**
 * Σ_batch x[i] · y[i] → [M, N], for x [..., M, K] and y [..., K, N] whose batch dims broadcast together:
 * one GEMM call whose batch entries accumulate into the same zeroed output (strideC 0, beta 1), which the
 * native kernel runs as one product reducing over every entry's K.
 */
export function batchSummedMatmul(x: Tensor, y: Tensor): Tensor {
  if (x.dtype !== y.dtype) throw new TypeError(`batchSummedMatmul: dtype mismatch ${x.dtype} vs ${y.dtype}`);
  if (x.ndim < 2 || y.ndim < 2) throw new RangeError(`batchSummedMatmul: operands must be matrices (${fmt(x.shape)} @ ${fmt(y.shape)})`);
  const M = x.shape[x.ndim - 2], Kx = x.shape[x.ndim - 1];
  const Ky = y.shape[y.ndim - 2], N = y.shape[y.ndim - 1];
  if (Kx !== Ky) throw new RangeError(`batchSummedMatmul: inner dimensions differ: ${fmt(x.shape)} @ ${fmt(y.shape)}`);
  const batchShape = broadcastShapes(x.shape.slice(0, -2), y.shape.slice(0, -2), 'batchSummedMatmul');
  const X = operand(x, batchShape, M, Kx);
  const Y = operand(y, batchShape, Kx, N);
  const nb = numel(batchShape);
  const out = Tensor.empty([M, N], x.dtype);
  if (nb > 0) {
    K.gemm({
      transA: X.trans, transB: Y.trans, M, N, K: Kx, alpha: 1,
      A: X.data, aOffset: X.offset, lda: X.ld, strideA: X.stride,
      B: Y.data, bOffset: Y.offset, ldb: Y.ld, strideB: Y.stride,
      beta: 1, C: out.data as FloatArray, cOffset: 0, ldc: N, strideC: 0,
      batch: nb,
    });
  }
  return record(out, 'batchSummedMatmul', [x, y], (g) => [
    x.requiresGrad ? matmul(g, transpose(y)) : null,
    y.requiresGrad ? matmul(transpose(x), g) : null,
  ]);
}

/** y = x Wᵀ + b with W of shape [out, in] (PyTorch's Linear layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new RangeError(`linear: input ${fmt(x.shape)} does not match weight ${fmt(weight.shape)} (expected last dim ${weight.shape[1]})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(`linear: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)} (expected [${weight.shape[0]}])`);
  }
  if (bias && bias.dtype !== x.dtype) throw new TypeError(`linear: bias dtype ${bias.dtype} differs from input dtype ${x.dtype}`);
  return product(x, transpose(weight), bias ?? null, weight);
}
