// Reductions: sum, mean, max/min (+ arg), argmin/argmax, var; and sumTo (gradient of broadcasting).

import { record } from '../autograd.js';
import { type FloatArray } from '../dtype.js';
import { K } from '../kernels/index.js';
import { fmt, normAxes, numel, sameShape, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { contiguousData, floatData } from './create.js';
import { div, mul, sub, eq } from './elementwise.js';
import { contiguous, expand, permute, reshape } from './shape.js';

interface Plan {
  outer: number;
  n: number;
  inner: number;
  keptShape: number[]; // shape with reduced dims set to 1
  outShape: number[];
  src: FloatArray;
}

// Bring x to a contiguous [outer, n, inner] layout where n covers the reduced axes.
function plan(x: Tensor, axes: number[], keepdim: boolean, op: string): Plan {
  floatData(x, op);
  const keptShape = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
  const outShape = keepdim ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const n = numel(axes.map((a) => x.shape[a]));
  const consecutive = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  if (consecutive && axes.length > 0) {
    const outer = numel(x.shape.slice(0, axes[0]));
    const inner = numel(x.shape.slice(axes[axes.length - 1] + 1));
    return { outer, n, inner, keptShape, outShape, src: contiguousData(x) as FloatArray };
  }
  const rest = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const moved = permute(x, [...rest, ...axes]);
  const src = contiguousData(moved) as FloatArray;
  moved.dispose();
  return { outer: numel(rest.map((i) => x.shape[i])), n, inner: 1, keptShape, outShape, src };
}

/** Runs of consecutive axes (sorted input), e.g. [0, 2, 3] → [[0, 0], [2, 3]]. */
function axisRuns(axes: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const a of axes) {
    const last = runs[runs.length - 1];
    if (last && a === last[1] + 1) last[1] = a;
    else runs.push([a, a]);
  }
  return runs;
}

export function sum(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'sum');
  const runs = axisRuns([...ax].sort((a, b) => a - b));
  const keptShape = x.shape.map((s, i) => (ax.includes(i) ? 1 : s));
  let out: Tensor;
  if (runs.length > 1 && x.isContiguous()) {
    // Separated axes (e.g. [0, 2] of a broadcast bias's gradient): reduce one run of consecutive axes
    // at a time, innermost first, reading x in place instead of permuting it into a copy.
    floatData(x, 'sum');
    let src = x.data as FloatArray, srcOffset = x.offset;
    let cur = [...x.shape];
    let tmp: Tensor | null = null;
    for (let r = runs.length - 1; r >= 0; r--) {
      const [a0, a1] = runs[r];
      const outer = numel(cur.slice(0, a0)), n = numel(cur.slice(a0, a1 + 1)), inner = numel(cur.slice(a1 + 1));
      for (let i = a0; i <= a1; i++) cur[i] = 1;
      const next = Tensor.empty(r === 0 ? (keepdim ? keptShape : x.shape.filter((_, i) => !ax.includes(i))) : cur, x.dtype);
      K.sum(srcOffset === 0 ? src : src.subarray(srcOffset, srcOffset + outer * n * inner), outer, n, inner, next.data as FloatArray);
      tmp?.dispose();
      tmp = next;
      src = next.data as FloatArray;
      srcOffset = 0;
    }
    out = tmp!;
  } else {
    const p = plan(x, ax, keepdim, 'sum');
    out = Tensor.empty(p.outShape, x.dtype);
    K.sum(p.src, p.outer, p.n, p.inner, out.data as FloatArray);
  }
  return record(out, 'sum', [x], (g) => [expand(reshape(g, keptShape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepdim = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'mean');
  const n = numel(ax.map((a) => x.shape[a]));
  return div(sum(x, ax, keepdim), n);
}

/** Population (unbiased=false) or sample variance over axes. */
export function variance(x: Tensor, axes?: number | readonly number[], keepdim = false, unbiased = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'var');
  const n = numel(ax.map((a) => x.shape[a]));
  const d = sub(x, mean(x, ax, true));
  return div(sum(mul(d, d), ax, keepdim), unbiased ? n - 1 : n);
}

function extreme(x: Tensor, axis: number, keepdim: boolean, isMax: boolean): { values: Tensor; indices: Tensor } {
  const op = isMax ? 'max' : 'min';
  const [a] = normAxes(axis, x.ndim, op);
  const p = plan(x, [a], keepdim, op);
  const values = Tensor.empty(p.outShape, x.dtype);
  const indices = Tensor.empty(p.outShape, 'int32');
  K.extreme(p.src, p.outer, p.n, p.inner, values.data as FloatArray, indices.data as Int32Array, isMax);
  record(values, op, [x], (g) => {
    // Gradient to the selected elements (all ties share it, like PyTorch's amax).
    const vk = reshape(values, p.keptShape);
    const mask = eq(x, vk);
    const count = sum(mask, [a], true);
    return [div(mul(mask, expand(reshape(g, p.keptShape), x.shape)), count)];
  });
  return { values, indices };
}

export function max(x: Tensor, axis: number, keepdim = false) {
  return extreme(x, axis, keepdim, true);
}
export function min(x: Tensor, axis: number, keepdim = false) {
  return extreme(x, axis, keepdim, false);
}
/** Index of the first maximum/minimum (int32). */
export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  return extreme(x, axis, keepdim, true).indices;
}
export function argmin(x: Tensor, axis: number, keepdim = false): Tensor {
  return extreme(x, axis, keepdim, false).indices;
}

/** Sum a broadcast gradient down to `shape` (inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new RangeError(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s.ndim === shape.length ? s : reshape(s, s.shape.slice(lead)), shape);
}

void contiguous;
