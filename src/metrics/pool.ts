// Inference-only pooling over [N, C, H, W] with padding, as torch.nn.functional computes it:
//   maxPool2d(x, k, s, p): padded positions never win (they are −∞);
//   avgPool2dExcludePad(x, k, s, p): the mean over the window's in-image values only
//     (F.avg_pool2d(..., count_include_pad=False), TensorFlow's average pool).
// Output size ⌊(H + 2p − k) / s⌋ + 1 (ceil_mode=False). No gradient is recorded: feature networks run
// under noGrad.

import * as T from '../engine/index.js';

function geometry(x: T.Tensor, k: number, s: number, p: number, op: string): [number, number, number, number, number] {
  if (x.ndim !== 4) throw new RangeError(`${op}: input must be [N, C, H, W], got [${x.shape}]`);
  const [N, C, H, W] = x.shape;
  if (!(k >= 1 && s >= 1 && p >= 0 && 2 * p <= k)) throw new RangeError(`${op}: invalid kernel ${k}, stride ${s}, padding ${p}`);
  const OH = Math.floor((H + 2 * p - k) / s) + 1, OW = Math.floor((W + 2 * p - k) / s) + 1;
  if (OH < 1 || OW < 1) throw new RangeError(`${op}: kernel ${k} is larger than the padded input [${x.shape}]`);
  return [N * C, H, W, OH, OW];
}

function pool(x: T.Tensor, k: number, s: number, p: number, op: string, max: boolean): T.Tensor {
  const [NC, H, W, OH, OW] = geometry(x, k, s, p, op);
  const src = T.contiguousData(T.cast(x, 'float32')) as Float32Array;
  const out = new Float32Array(NC * OH * OW);
  for (let c = 0; c < NC; c++) {
    const base = c * H * W;
    for (let oy = 0; oy < OH; oy++) {
      const y0 = Math.max(oy * s - p, 0), y1 = Math.min(oy * s - p + k, H);
      for (let ox = 0; ox < OW; ox++) {
        const x0 = Math.max(ox * s - p, 0), x1 = Math.min(ox * s - p + k, W);
        let acc = max ? -Infinity : 0;
        for (let y = y0; y < y1; y++) {
          const row = base + y * W;
          for (let xx = x0; xx < x1; xx++) {
            const v = src[row + xx];
            if (max) {
              if (v > acc || Number.isNaN(v)) acc = v;
            } else acc += v;
          }
        }
        out[(c * OH + oy) * OW + ox] = max ? acc : acc / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return T.tensor(out, [x.shape[0], x.shape[1], OH, OW]);
}

export function maxPool2d(x: T.Tensor, kernel: number, stride = kernel, padding = 0): T.Tensor {
  return pool(x, kernel, stride, padding, 'maxPool2d', true);
}

export function avgPool2dExcludePad(x: T.Tensor, kernel: number, stride = kernel, padding = 0): T.Tensor {
  return pool(x, kernel, stride, padding, 'avgPool2d', false);
}
