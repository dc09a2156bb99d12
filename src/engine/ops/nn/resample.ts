// Resampling of [N, C, H, W] images: nearest upsampling by an integer factor, average and 2×2 max pooling and
// bilinear interpolation (align_corners = false).

import { record } from '../../autograd.js';
import type { FloatArray } from '../../dtype.js';
import { K } from '../../kernels/index.js';
import { fmt } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import { checkFloat, dense, positiveInt } from './common.js';

function image(op: string, x: Tensor): [number, number, number, number] {
  checkFloat(op, { input: x });
  if (x.ndim !== 4) throw new RangeError(`${op}: input must be [N, C, H, W], got ${fmt(x.shape)}`);
  return [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
}

/** PyTorch F.interpolate(mode='nearest') with an integer scale: [N, C, H, W] → [N, C, H·s, W·s]. */
export function upsampleNearest(x: Tensor, scale = 2): Tensor {
  const [N, C, H, W] = image('upsampleNearest', x);
  const s = positiveInt('upsampleNearest', 'scale', scale);
  const out = Tensor.empty([N, C, H * s, W * s], x.dtype);
  K.upsampleNearestForward(dense(x), N * C, H, W, s, out.data as FloatArray);
  return record(out, 'upsampleNearest', [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K.upsampleNearestBackward(dense(g), N * C, H, W, s, gx.data as FloatArray);
    return [gx];
  });
}

/** F.avg_pool2d(x, kernel, stride) without padding: OH = ⌊(H − kernel) / stride⌋ + 1. */
export function avgPool2d(x: Tensor, kernel = 2, stride = kernel): Tensor {
  const [N, C, H, W] = image('avgPool2d', x);
  const k = positiveInt('avgPool2d', 'kernel', kernel);
  const s = positiveInt('avgPool2d', 'stride', stride);
  if (k > H || k > W) throw new RangeError(`avgPool2d: kernel ${k} is larger than the input ${fmt(x.shape)}`);
  const OH = Math.floor((H - k) / s) + 1, OW = Math.floor((W - k) / s) + 1;
  const out = Tensor.empty([N, C, OH, OW], x.dtype);
  K.avgPool2dForward(dense(x), N * C, H, W, k, s, OH, OW, out.data as FloatArray);
  return record(out, 'avgPool2d', [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K.avgPool2dBackward(dense(g), N * C, H, W, k, s, OH, OW, gx.data as FloatArray);
    return [gx];
  });
}

/**
 * F.max_pool2d(x, 2, 2) (nn.MaxPool2d(2, 2)): [N, C, H, W] → [N, C, ⌊H/2⌋, ⌊W/2⌋], odd trailing rows and
 * columns dropped. The gradient goes to each window's first maximum (a NaN wins), as PyTorch routes it.
 */
export function maxPool2x2(x: Tensor): Tensor {
  const [N, C, H, W] = image('maxPool2x2', x);
  const OH = Math.floor(H / 2), OW = Math.floor(W / 2);
  if (OH < 1 || OW < 1) throw new RangeError(`maxPool2x2: input ${fmt(x.shape)} is smaller than the 2×2 window`);
  const out = Tensor.empty([N, C, OH, OW], x.dtype);
  const arg = new Int32Array(N * C * OH * OW);
  K.maxPool2x2Forward(dense(x), N * C, H, W, OH, OW, out.data as FloatArray, arg);
  return record(out, 'maxPool2x2', [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K.maxPool2x2Backward(dense(g), arg, N * C, H, W, OH, OW, gx.data as FloatArray);
    return [gx];
  });
}

/**
 * F.interpolate(x, size=[OH, OW], mode='bilinear', align_corners=False). When the caller used
 * scale_factor in PyTorch, pass it as `scaleFactor` too: PyTorch then maps coordinates with 1/scale_factor
 * instead of H/OH (they differ when H·scale_factor is not an integer).
 */
export function interpolateBilinear(x: Tensor, size: readonly [number, number], scaleFactor?: number | readonly [number, number]): Tensor {
  const [N, C, H, W] = image('interpolateBilinear', x);
  const OH = positiveInt('interpolateBilinear', 'output height', size[0]);
  const OW = positiveInt('interpolateBilinear', 'output width', size[1]);
  let scaleH = H / OH, scaleW = W / OW;
  if (scaleFactor !== undefined) {
    const [fh, fw] = typeof scaleFactor === 'number' ? [scaleFactor, scaleFactor] : scaleFactor;
    if (!(fh > 0 && fw > 0)) throw new RangeError(`interpolateBilinear: scale factors must be positive, got [${fh}, ${fw}]`);
    scaleH = 1 / fh;
    scaleW = 1 / fw;
  }
  const out = Tensor.empty([N, C, OH, OW], x.dtype);
  K.bilinearForward(dense(x), N * C, H, W, OH, OW, scaleH, scaleW, out.data as FloatArray);
  return record(out, 'interpolateBilinear', [x], (g) => {
    const gx = Tensor.empty(x.shape, x.dtype);
    K.bilinearBackward(dense(g), N * C, H, W, OH, OW, scaleH, scaleW, gx.data as FloatArray);
    return [gx];
  });
}
