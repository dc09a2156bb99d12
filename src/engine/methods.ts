// Method-style sugar on Tensor for the most used ops (x.add(y).reshape([...])). The functions remain
// the primary API; this file only forwards.

import { Tensor } from './tensor.js';
import type { Shape } from './shape.js';
import type { DType } from './dtype.js';
import * as E from './ops/elementwise.js';
import * as S from './ops/shape.js';
import * as R from './ops/reduce.js';
import * as M from './ops/matmul.js';
import { cast } from './ops/create.js';

type TN = Tensor | number;
declare module './tensor.js' {
  interface Tensor {
    add(o: TN): Tensor;
    sub(o: TN): Tensor;
    mul(o: TN): Tensor;
    div(o: TN): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    pow(e: TN): Tensor;
    matmul(o: Tensor): Tensor;
    reshape(shape: Shape): Tensor;
    permute(...dims: number[]): Tensor;
    transpose(a?: number, b?: number): Tensor;
    contiguous(): Tensor;
    flatten(start?: number, end?: number): Tensor;
    unsqueeze(axis: number): Tensor;
    squeeze(axis?: number): Tensor;
    expand(shape: Shape): Tensor;
    slice(axis: number, start: number, end?: number, step?: number): Tensor;
    sum(axes?: number | number[], keepdim?: boolean): Tensor;
    mean(axes?: number | number[], keepdim?: boolean): Tensor;
    detach(): Tensor;
    float(): Tensor;
    to(dtype: DType): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (o) { return E.add(this, o); };
P.sub = function (o) { return E.sub(this, o); };
P.mul = function (o) { return E.mul(this, o); };
P.div = function (o) { return E.div(this, o); };
P.neg = function () { return E.neg(this); };
P.exp = function () { return E.exp(this); };
P.log = function () { return E.log(this); };
P.sqrt = function () { return E.sqrt(this); };
P.pow = function (e) { return E.pow(this, e); };
P.matmul = function (o) { return M.matmul(this, o); };
P.reshape = function (shape) { return S.reshape(this, shape); };
P.permute = function (...dims) { return S.permute(this, dims); };
P.transpose = function (a = -2, b = -1) { return S.transpose(this, a, b); };
P.contiguous = function () { return S.contiguous(this); };
P.flatten = function (s = 0, e = -1) { return S.flatten(this, s, e); };
P.unsqueeze = function (a) { return S.unsqueeze(this, a); };
P.squeeze = function (a) { return S.squeeze(this, a); };
P.expand = function (shape) { return S.expand(this, shape); };
P.slice = function (a, s, e, st) { return S.slice(this, a, s, e, st); };
P.sum = function (axes, k = false) { return R.sum(this, axes, k); };
P.mean = function (axes, k = false) { return R.mean(this, axes, k); };
P.detach = function () { return E.detach(this); };
P.float = function () { return cast(this, 'float32'); };
P.to = function (dtype) { return cast(this, dtype); };
