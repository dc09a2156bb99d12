// Elementwise ops with broadcasting, and their gradients.

import { record } from '../autograd.js';
import { promote, type FloatArray } from '../dtype.js';
import { K } from '../kernels/index.js';
import type { BinaryOp, UnaryOp } from '../kernels/elementwise.js';
import { broadcastShapes, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { contiguousData, floatData, full, scalar, stridedAs } from './create.js';

type TensorOrNumber = Tensor | number;

function asTensor(x: TensorOrNumber, like: Tensor): Tensor {
  return typeof x === 'number' ? scalar(x, like.dtype) : x;
}

function unary(op: UnaryOp, x: Tensor, p = 0, q = 0): Tensor {
  floatData(x, op);
  const out = Tensor.uninit(x.shape, x.dtype);
  K.unary(op, stridedAs(x, x.shape), out.data as FloatArray, x.shape, p, q);
  return record(out, op, [x], (g) => {
    const gi = Tensor.uninit(x.shape, x.dtype);
    K.unaryBackward(op, contiguousData(x) as FloatArray, out.data as FloatArray, contiguousData(g) as FloatArray, gi.data as FloatArray, p, q);
    return [gi];
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const abs = (x: Tensor) => unary('abs', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const silu = (x: Tensor) => unary('silu', x);
/** GELU with the exact erf (PyTorch's default, used by GEGLU and the BERT feed-forward). */
export const gelu = (x: Tensor) => unary('gelu', x);
export const relu = (x: Tensor) => unary('relu', x);
export const leakyRelu = (x: Tensor, slope = 0.01) => unary('leaky_relu', x, slope);
export const square = (x: Tensor) => unary('square', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export const sign = (x: Tensor) => unary('sign', x);
export const clamp = (x: Tensor, lo = -Infinity, hi = Infinity) => unary('clamp', x, lo, hi);
export const addScalar = (x: Tensor, s: number) => unary('add_scalar', x, s);
export const mulScalar = (x: Tensor, s: number) => unary('mul_scalar', x, s);

export function pow(x: Tensor, e: TensorOrNumber): Tensor {
  if (typeof e === 'number') return unary('pow_scalar', x, e);
  return binary('pow', x, e);
}

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const dtype = promote(a.dtype, b.dtype, op);
  if (a.dtype !== b.dtype) throw new TypeError(`${op}: dtype mismatch ${a.dtype} ${fmt(a.shape)} vs ${b.dtype} ${fmt(b.shape)}`);
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = Tensor.uninit(shape, dtype);
  K.binary(op, stridedAs(a, shape), stridedAs(b, shape), out.data as FloatArray, shape);
  return record(out, op, [a, b], (g) => binaryBackward(op, a, b, out, g));
}

// Gradients come back in the output's (broadcast) shape; autograd sums them down to each input's shape.
function binaryBackward(op: BinaryOp, a: Tensor, b: Tensor, out: Tensor, g: Tensor): (Tensor | null)[] {
  switch (op) {
    case 'add': return [g, g];
    case 'sub': return [g, b.requiresGrad ? neg(g) : null];
    case 'mul': return [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null];
    case 'div': return [
      a.requiresGrad ? div(g, b) : null,
      b.requiresGrad ? neg(div(mul(g, out), b)) : null,
    ];
    case 'pow': return [
      a.requiresGrad ? mul(mul(g, b), pow(a, sub(b, 1))) : null,
      b.requiresGrad ? mul(mul(g, out), log(a)) : null,
    ];
    case 'maximum':
    case 'minimum': {
      // The gradient goes to the selected input (to a on ties, like a mask-based implementation).
      const pickA = binary(op === 'maximum' ? 'ge' : 'le', a, b);
      return [a.requiresGrad ? mul(g, pickA) : null, b.requiresGrad ? mul(g, rsub(pickA, 1)) : null];
    }
    default: return [null, null];
  }
}

function rsub(x: Tensor, s: number): Tensor {
  return unary('rsub_scalar', x, s);
}

export function add(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return b === 0 ? a : addScalar(a, b);
  if (typeof a === 'number' && b instanceof Tensor) return addScalar(b, a);
  return binary('add', a as Tensor, b as Tensor);
}
export function sub(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return addScalar(a, -b);
  if (typeof a === 'number' && b instanceof Tensor) return rsub(b, a);
  return binary('sub', a as Tensor, b as Tensor);
}
export function mul(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return mulScalar(a, b);
  if (typeof a === 'number' && b instanceof Tensor) return mulScalar(b, a);
  return binary('mul', a as Tensor, b as Tensor);
}
export function div(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return mulScalar(a, 1 / b);
  if (typeof a === 'number' && b instanceof Tensor) return mulScalar(reciprocal(b), a);
  return binary('div', a as Tensor, b as Tensor);
}
export const maximum = (a: Tensor, b: TensorOrNumber) => binary('maximum', a, asTensor(b, a));
export const minimum = (a: Tensor, b: TensorOrNumber) => binary('minimum', a, asTensor(b, a));
/** Comparisons return 0/1 float masks (no gradient). */
export const gt = (a: Tensor, b: TensorOrNumber) => binary('gt', a, asTensor(b, a));
export const lt = (a: Tensor, b: TensorOrNumber) => binary('lt', a, asTensor(b, a));
export const ge = (a: Tensor, b: TensorOrNumber) => binary('ge', a, asTensor(b, a));
export const le = (a: Tensor, b: TensorOrNumber) => binary('le', a, asTensor(b, a));
export const eq = (a: Tensor, b: TensorOrNumber) => binary('eq', a, asTensor(b, a));

/** cond ? a : b with broadcasting (cond is a 0/1 float mask). */
export function where(cond: Tensor, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
  const ta = asTensor(a, like), tb = asTensor(b, like);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
  const out = Tensor.uninit(shape, promote(ta.dtype, tb.dtype, 'where'));
  K.where(stridedAs(cond, shape), stridedAs(ta, shape), stridedAs(tb, shape), out.data as FloatArray, shape);
  return record(out, 'where', [cond, ta, tb], (g) => {
    const zero = full([], 0, g.dtype);
    return [null, ta.requiresGrad ? where(cond, g, zero) : null, tb.requiresGrad ? where(cond, zero, g) : null];
  });
}

/** A detached alias: same storage, no graph. */
export function detach(x: Tensor): Tensor {
  return x.view_(x.shape, x.strides, x.offset);
}
