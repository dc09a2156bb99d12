// 2-D convolution (groups = 1, dilation 1) with zero padding, possibly asymmetric.

import { record } from '../../autograd.js';
import type { FloatArray } from '../../dtype.js';
import type { ConvGeometry } from '../../kernels/conv.js';
import { K } from '../../kernels/index.js';
import { fmt } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { convWeightPack } from '../../weight-cache.js';
import { sum } from '../reduce.js';
import { checkFloat, dense, denseOrNull, positiveInt, withDense } from './common.js';

export interface Conv2dOptions {
  /** One stride for both axes, or [sh, sw]. Default 1. */
  stride?: number | readonly [number, number];
  /** p (all sides), [ph, pw] (top = bottom = ph, left = right = pw) or [top, bottom, left, right]. Default 0. */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
}

function pads(p: Conv2dOptions['padding']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  if (typeof p === 'number') return [p, p, p, p];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  if (p.length === 4) return [p[0], p[1], p[2], p[3]];
  throw new RangeError(`conv2d: padding must be a number, [ph, pw] or [top, bottom, left, right], got [${(p as number[]).join(', ')}]`);
}

/**
 * y[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c]: x [N, C, H, W], w [O, C, kh, kw], b [O] or null → [N, O, OH, OW],
 * OH = ⌊(H + top + bottom − kh) / sh⌋ + 1, OW likewise.
 */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  checkFloat('conv2d', { input: x, weight: w, bias: b });
  if (x.ndim !== 4) throw new RangeError(`conv2d: input must be [N, C, H, W], got ${fmt(x.shape)}`);
  if (w.ndim !== 4) throw new RangeError(`conv2d: weight must be [O, C, kh, kw], got ${fmt(w.shape)}`);
  const [N, C, H, W] = x.shape;
  const [O, Cw, kh, kw] = w.shape;
  if (Cw !== C) throw new RangeError(`conv2d: input ${fmt(x.shape)} has ${C} channels but weight ${fmt(w.shape)} expects ${Cw}`);
  if (b && (b.ndim !== 1 || b.shape[0] !== O)) throw new RangeError(`conv2d: bias ${fmt(b.shape)} does not match weight ${fmt(w.shape)} (expected [${O}])`);
  const st = opts.stride ?? 1;
  const sh = positiveInt('conv2d', 'stride', typeof st === 'number' ? st : st[0]);
  const sw = positiveInt('conv2d', 'stride', typeof st === 'number' ? st : st[1]);
  const [pt, pb, pl, pr] = pads(opts.padding);
  if ([pt, pb, pl, pr].some((p) => !Number.isInteger(p) || p < 0)) throw new RangeError(`conv2d: padding must be non-negative integers, got [${pt}, ${pb}, ${pl}, ${pr}]`);
  const OH = Math.floor((H + pt + pb - kh) / sh) + 1;
  const OW = Math.floor((W + pl + pr - kw) / sw) + 1;
  if (OH < 1 || OW < 1) {
    throw new RangeError(`conv2d: kernel ${kh}×${kw} is larger than the padded input ${fmt(x.shape)} (padding [${pt}, ${pb}, ${pl}, ${pr}])`);
  }
  const xd = dense(x), wd = dense(w);
  const out = Tensor.uninit([N, O, OH, OW], x.dtype);
  const geom: ConvGeometry = { N, C, H, W, O, kh, kw, sh, sw, padTop: pt, padLeft: pl, OH, OW };
  K.conv2dForward(geom, xd, wd, denseOrNull(b), out.data as FloatArray, convWeightPack(w, wd, geom));
  return record(out, 'conv2d', [x, w, b], (g) => withDense(g, (gd) => {
    let gx: Tensor | null = null, gw: Tensor | null = null, gb: Tensor | null = null;
    if (x.requiresGrad) {
      gx = Tensor.uninit(x.shape, x.dtype);
      K.conv2dBackwardInput(geom, gd, wd, gx.data as FloatArray);
    }
    const wantB = !!b && b.requiresGrad;
    if (w.requiresGrad) {
      gw = Tensor.uninit(w.shape, w.dtype);
      if (wantB) gb = Tensor.uninit([O], w.dtype);
      K.conv2dBackwardWeight(geom, xd, gd, gw.data as FloatArray, gb ? (gb.data as FloatArray) : null);
    } else if (wantB) {
      gb = sum(g, [0, 2, 3]);
    }
    return [gx, gw, gb];
  }));
}
