// The reference's `split_input_params` tiling (LatentDiffusion.get_fold_unfold / get_weighting /
// delta_border): run a network on overlapping crops and blend the outputs with border-distance weights.
//
//   crops: windows of ks at stride s (torch.nn.Unfold order: row-major over window positions);
//   weight of an output pixel = clip(distance to the crop border / (size − 1), clip_min, clip_max)
//   (× clip(distance of the crop in the crop grid, tie_min, tie_max) with tie_braker);
//   output = Σ crops·weights / Σ weights (torch.nn.Fold sums overlaps).
// Unlike the reference, which drops trailing pixels not covered by a full window (they come out as
// 0/0 = NaN), one more window aligned to the far edge is added when the stride does not land there.

import * as T from '../engine/index.js';

export interface SplitInputParams {
  /** Window and stride in the space the network runs on (latent for the UNet/decoder, pixels for the encoder). */
  ks: [number, number];
  stride: [number, number];
  /** The first stage's downsampling factor (decode: crops grow ×vqf; encode: shrink ÷vqf). */
  vqf: number;
  /** Also tile the first-stage decode (and encode). */
  patch_distributed_vq: boolean;
  tie_braker: boolean;
  clip_max_weight: number;
  clip_min_weight: number;
  clip_max_tie_weight: number;
  clip_min_tie_weight: number;
}

/** The values notebook_helpers.py uses for the ×4 super-resolution model. */
export function defaultSplitInputParams(vqf = 4): SplitInputParams {
  return {
    ks: [128, 128], stride: [64, 64], vqf, patch_distributed_vq: true, tie_braker: false,
    clip_max_weight: 0.5, clip_min_weight: 0.01, clip_max_tie_weight: 0.5, clip_min_tie_weight: 0.01,
  };
}

/** Window start positions along one axis covering [0, n). */
export function windowStarts(n: number, k: number, s: number): number[] {
  const out: number[] = [];
  for (let p = 0; p + k <= n; p += s) out.push(p);
  if (out.length === 0 || out.at(-1)! + k < n) out.push(n - k);
  return out;
}

/** delta_border(h, w): normalised distance to the nearest border, 0 at the border, ≤ 0.5 in the centre. */
export function deltaBorder(h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  const f = Math.fround;
  for (let y = 0; y < h; y++) {
    const ay = h > 1 ? f(y / (h - 1)) : 0;
    for (let x = 0; x < w; x++) {
      const ax = w > 1 ? f(x / (w - 1)) : 0;
      out[y * w + x] = Math.min(Math.min(ay, ax), Math.min(f(1 - ay), f(1 - ax)));
    }
  }
  return out;
}

function clip(v: Float32Array, lo: number, hi: number): Float32Array {
  return v.map((x) => Math.min(Math.max(x, lo), hi));
}

/**
 * Apply `fn` to overlapping crops of x [B, C, H, W] and blend. `fn` maps a crop [B, C, kh, kw] to
 * [B, C', kh·scale, kw·scale] (scale = vqf when decoding, 1/vqf when encoding, 1 for the UNet).
 * `extra` are tensors cropped with the same windows (e.g. concat conditioning) and passed along.
 */
export function tiledApply(
  x: T.Tensor,
  sp: SplitInputParams,
  scale: number,
  fn: (crop: T.Tensor, extraCrops: T.Tensor[], index: number) => T.Tensor,
  extra: T.Tensor[] = [],
): T.Tensor {
  const [B, , H, W] = x.shape;
  const kh = Math.min(sp.ks[0], H), kw = Math.min(sp.ks[1], W);
  const sh = Math.min(sp.stride[0], H), sw = Math.min(sp.stride[1], W);
  const ys = windowStarts(H, kh, sh), xs = windowStarts(W, kw, sw);
  const okh = Math.round(kh * scale), okw = Math.round(kw * scale);
  const OH = Math.round(H * scale), OW = Math.round(W * scale);
  if (Math.abs(kh * scale - okh) > 1e-9 || Math.abs(H * scale - OH) > 1e-9) throw new RangeError(`tiling: window ${kh}×${kw} or size ${H}×${W} not divisible by 1/${scale}`);
  let weight = clip(deltaBorder(okh, okw), sp.clip_min_weight, sp.clip_max_weight);
  const tie = sp.tie_braker ? clip(deltaBorder(ys.length, xs.length), sp.clip_min_tie_weight, sp.clip_max_tie_weight) : null;
  let acc: Float32Array | null = null;
  let C = 0;
  const norm = new Float32Array(OH * OW);
  let idx = 0;
  for (let iy = 0; iy < ys.length; iy++) {
    for (let ix = 0; ix < xs.length; ix++, idx++) {
      const y0 = ys[iy], x0 = xs[ix];
      const w = tie ? weight.map((v) => v * tie[iy * xs.length + ix]) : weight;
      const out = T.tidy(() => {
        const crop = (t: T.Tensor) => T.contiguous(T.slice(T.slice(t, 2, y0, y0 + kh), 3, x0, x0 + kw));
        return T.contiguous(fn(crop(x), extra.map(crop), idx));
      });
      if (out.ndim !== 4 || out.shape[0] !== B || out.shape[2] !== okh || out.shape[3] !== okw) {
        throw new RangeError(`tiling: a ${kh}×${kw} crop gave [${out.shape}], expected [${B}, C, ${okh}, ${okw}]`);
      }
      if (acc === null) {
        C = out.shape[1];
        acc = new Float32Array(B * C * OH * OW);
      }
      const o = out.data as Float32Array;
      const oy = Math.round(y0 * scale), ox = Math.round(x0 * scale);
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          const src = (b * C + c) * okh * okw, dst = (b * C + c) * OH * OW;
          for (let yy = 0; yy < okh; yy++) {
            for (let xx = 0; xx < okw; xx++) acc[dst + (oy + yy) * OW + ox + xx] += o[src + yy * okw + xx] * w[yy * okw + xx];
          }
        }
      }
      for (let yy = 0; yy < okh; yy++) for (let xx = 0; xx < okw; xx++) norm[(oy + yy) * OW + ox + xx] += w[yy * okw + xx];
      out.dispose();
    }
  }
  weight = new Float32Array(0);
  const res = acc!;
  for (let i = 0; i < res.length; i++) res[i] /= norm[i % (OH * OW)];
  return T.tensor(res, [B, C, OH, OW]);
}
