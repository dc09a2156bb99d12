// Reference (pure TypeScript) kernels for elementwise maps. Every kernel takes float arrays
// (Float32Array or Float64Array) so float64 gradient checks run the same code.
// Strided inputs are given as (data, offset, strides) over the output's shape; a broadcast dim has stride 0.

import type { FloatArray } from '../dtype.js';
import { erf } from './special.js';

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'sin' | 'cos' | 'abs' | 'sigmoid' | 'tanh' | 'silu'
  | 'gelu' | 'relu' | 'leaky_relu' | 'square' | 'reciprocal' | 'sign' | 'pow_scalar' | 'clamp'
  | 'add_scalar' | 'mul_scalar' | 'rsub_scalar' | 'copy';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'gt' | 'lt' | 'ge' | 'le' | 'eq';

export interface Strided {
  data: FloatArray;
  offset: number;
  strides: readonly number[];
}

/** Scalar function of one element; p and q are op parameters (slope, exponent, bounds, scalar). */
export function unaryFn(op: UnaryOp, p: number, q: number): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'sin': return Math.sin;
    case 'cos': return Math.cos;
    case 'abs': return Math.abs;
    case 'sigmoid': return (x) => 1 / (1 + Math.exp(-x));
    case 'tanh': return Math.tanh;
    case 'silu': return (x) => x / (1 + Math.exp(-x));
    case 'gelu': return (x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2));
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'leaky_relu': return (x) => (x > 0 ? x : x * p);
    case 'square': return (x) => x * x;
    case 'reciprocal': return (x) => 1 / x;
    case 'sign': return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    case 'pow_scalar': return (x) => Math.pow(x, p);
    case 'clamp': return (x) => (x < p ? p : x > q ? q : x);
    case 'add_scalar': return (x) => x + p;
    case 'mul_scalar': return (x) => x * p;
    case 'rsub_scalar': return (x) => p - x;
    case 'copy': return (x) => x;
  }
}

/**
 * d(op)/dx · g, given x (input) and y (output). Used by backward of every unary op.
 * For clamp the gradient passes where p <= x <= q (PyTorch's convention).
 */
export function unaryGradFn(op: UnaryOp, p: number, q: number): (x: number, y: number, g: number) => number {
  switch (op) {
    case 'neg': return (_x, _y, g) => -g;
    case 'exp': return (_x, y, g) => g * y;
    case 'log': return (x, _y, g) => g / x;
    case 'sqrt': return (_x, y, g) => g * 0.5 / y;
    case 'rsqrt': return (_x, y, g) => g * -0.5 * y * y * y;
    case 'sin': return (x, _y, g) => g * Math.cos(x);
    case 'cos': return (x, _y, g) => -g * Math.sin(x);
    case 'abs': return (x, _y, g) => (x > 0 ? g : x < 0 ? -g : 0);
    case 'sigmoid': return (_x, y, g) => g * y * (1 - y);
    case 'tanh': return (_x, y, g) => g * (1 - y * y);
    case 'silu': return (x, _y, g) => {
      const s = 1 / (1 + Math.exp(-x));
      return g * s * (1 + x * (1 - s));
    };
    case 'gelu': return (x, _y, g) => {
      const cdf = 0.5 * (1 + erf(x * Math.SQRT1_2));
      const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      return g * (cdf + x * pdf);
    };
    case 'relu': return (x, _y, g) => (x > 0 ? g : 0);
    case 'leaky_relu': return (x, _y, g) => (x > 0 ? g : g * p);
    case 'square': return (x, _y, g) => 2 * x * g;
    case 'reciprocal': return (_x, y, g) => -g * y * y;
    case 'sign': return () => 0;
    case 'pow_scalar': return (x, _y, g) => (p === 0 ? 0 : g * p * Math.pow(x, p - 1));
    case 'clamp': return (x, _y, g) => (x >= p && x <= q ? g : 0);
    case 'add_scalar': return (_x, _y, g) => g;
    case 'mul_scalar': return (_x, _y, g) => g * p;
    case 'rsub_scalar': return (_x, _y, g) => -g;
    case 'copy': return (_x, _y, g) => g;
  }
}

export function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    case 'pow': return Math.pow;
    case 'maximum': return (a, b) => (a > b || Number.isNaN(a) ? a : b);
    case 'minimum': return (a, b) => (a < b || Number.isNaN(a) ? a : b);
    case 'gt': return (a, b) => (a > b ? 1 : 0);
    case 'lt': return (a, b) => (a < b ? 1 : 0);
    case 'ge': return (a, b) => (a >= b ? 1 : 0);
    case 'le': return (a, b) => (a <= b ? 1 : 0);
    case 'eq': return (a, b) => (a === b ? 1 : 0);
  }
}

/** Calls body(outIndex, pIn0, pIn1, ...) for every element of `shape`, in row-major order. */
function forEachStrided(shape: readonly number[], ins: Strided[], body: (i: number, p: Int32Array | number[]) => void): void {
  const nd = shape.length;
  let n = 1;
  for (const s of shape) n *= s;
  const idx = new Array<number>(nd).fill(0);
  const p = ins.map((s) => s.offset);
  for (let i = 0; i < n; i++) {
    body(i, p);
    for (let k = nd - 1; k >= 0; k--) {
      idx[k]++;
      for (let j = 0; j < ins.length; j++) p[j] += ins[j].strides[k];
      if (idx[k] < shape[k]) break;
      for (let j = 0; j < ins.length; j++) p[j] -= ins[j].strides[k] * shape[k];
      idx[k] = 0;
    }
  }
}

function isDense(s: Strided, shape: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && s.strides[i] !== acc) return false;
    acc *= shape[i];
  }
  return true;
}

export const tsElementwise = {
  unary(op: UnaryOp, x: Strided, out: FloatArray, shape: readonly number[], p = 0, q = 0): void {
    const f = unaryFn(op, p, q);
    const d = x.data;
    if (isDense(x, shape)) {
      const o = x.offset;
      for (let i = 0; i < out.length; i++) out[i] = f(d[o + i]);
      return;
    }
    forEachStrided(shape, [x], (i, ptr) => {
      out[i] = f(d[ptr[0]]);
    });
  },

  /** out = g · op'(x) for contiguous x, y, g, out. */
  unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, g: FloatArray, out: FloatArray, p = 0, q = 0): void {
    const f = unaryGradFn(op, p, q);
    for (let i = 0; i < out.length; i++) out[i] = f(x[i], y[i], g[i]);
  },

  binary(op: BinaryOp, a: Strided, b: Strided, out: FloatArray, shape: readonly number[]): void {
    const f = binaryFn(op);
    const da = a.data, db = b.data;
    if (isDense(a, shape) && isDense(b, shape)) {
      const oa = a.offset, ob = b.offset;
      for (let i = 0; i < out.length; i++) out[i] = f(da[oa + i], db[ob + i]);
      return;
    }
    forEachStrided(shape, [a, b], (i, ptr) => {
      out[i] = f(da[ptr[0]], db[ptr[1]]);
    });
  },

  /** out = cond ? a : b (cond nonzero), all strided over `shape`. */
  where(cond: Strided, a: Strided, b: Strided, out: FloatArray, shape: readonly number[]): void {
    const dc = cond.data, da = a.data, db = b.data;
    forEachStrided(shape, [cond, a, b], (i, ptr) => {
      out[i] = dc[ptr[0]] !== 0 ? da[ptr[1]] : db[ptr[2]];
    });
  },

  /** Strided gather into a contiguous buffer (contiguous(), expand materialisation, casts). */
  copyStrided(x: Strided, out: FloatArray | Int32Array, shape: readonly number[]): void {
    const d = x.data;
    forEachStrided(shape, [x], (i, ptr) => {
      out[i] = d[ptr[0]];
    });
  },
};

export type ElementwiseKernels = typeof tsElementwise;
