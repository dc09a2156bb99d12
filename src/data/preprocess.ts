// The reference's image preprocessing for training sets (taming/data/base.py ImagePaths and
// ldm/data/lsun.py): to RGB, resize so the short side is `size` (albumentations' SmallestMaxSize: the other
// side scaled and rounded half-to-even), crop size×size at the center ((extent − size) // 2) or at random
// (⌊(extent − size + 1)·u⌋: every offset equally likely, as albumentations' RandomCrop since its PR #1080;
// the 0.4.3 the reference pins computed ⌊(extent − size)·u⌋ and never picked the last offset), flip horizontally with probability `flipP`
// (torchvision's RandomHorizontalFlip: flip when u < p), then x/127.5 − 1 in float32, laid out [C, H, W].
//
// Resampling is Pillow's antialiased filter (src/data/resize.ts; bicubic by default, as ldm/data/lsun.py):
// the reference's ImagePaths goes through OpenCV's INTER_LINEAR, which does not antialias when it
// downscales. Transparent pixels are composited on a fixed background (PIL's convert("RGB") would drop
// the alpha channel and keep whatever colour lies under it).

import { pilGray, type Image } from '../io/image.js';
import { resizeU8, type Interpolation } from './resize.js';
import type { AugDraw } from './types.js';

export interface PreprocessOptions {
  /** Output height = width; 0 keeps the image's size (it must then be square). */
  size: number;
  /** Random crop when augmenting (default false: center crop always). */
  randomCrop?: boolean;
  /** Horizontal flip probability when augmenting (default 0). */
  flipP?: number;
  interpolation?: Interpolation;
  /** 3 (RGB, default) or 1 (PIL's convert("L") luma). */
  channels?: 1 | 3;
  /** RGB a transparent pixel is composited on (default white). */
  background?: [number, number, number];
  /**
   * ldm/data/lsun.py's order: crop the centered square of the short side first, then resize it to
   * size×size (no random crop). Default false: resize the short side, then crop (taming's ImagePaths).
   */
  cropFirst?: boolean;
}

/** x/127.5 − 1 in float32 for every byte value (numpy's (image/127.5 − 1.0).astype(float32)). */
export const SIGNED = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = b / 127.5 - 1;
  return t;
})();

/** Python 3's round (half to even), as albumentations' py3round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(r - x) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** RGBA/RGB/gray pixels → `channels` interleaved bytes, alpha composited on `background`. */
export function flatten(img: Image, channels: 1 | 3, background: [number, number, number] = [255, 255, 255]): Uint8Array {
  const n = img.width * img.height, C = img.channels, d = img.data;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    let r: number, g: number, b: number;
    if (C === 1) r = g = b = d[i];
    else {
      r = d[C * i];
      g = d[C * i + 1];
      b = d[C * i + 2];
      if (C === 4) {
        const a = d[4 * i + 3];
        if (a !== 255) {
          // round((v·a + bg·(255 − a)) / 255)
          r = Math.floor((r * a + background[0] * (255 - a) + 127) / 255);
          g = Math.floor((g * a + background[1] * (255 - a) + 127) / 255);
          b = Math.floor((b * a + background[2] * (255 - a) + 127) / 255);
        }
      }
    }
    if (channels === 3) {
      out[3 * i] = r;
      out[3 * i + 1] = g;
      out[3 * i + 2] = b;
    } else {
      out[i] = pilGray(r, g, b);
    }
  }
  return out;
}

/** 8-bit pixels resized so that the short side is `size` (interleaved `channels` per pixel). */
export interface Resized {
  px: Uint8Array;
  w: number;
  h: number;
}

/** Flatten to `channels` and resize the short side to `size` (the deterministic part of the pipeline). */
export function resizeShortSide(img: Image, o: PreprocessOptions, name = 'image'): Resized {
  const C = o.channels ?? 3;
  let px = flatten(img, C, o.background);
  let w = img.width, h = img.height;
  const size = o.size || (w === h ? w : 0);
  if (!size) throw new Error(`${name}: ${w}×${h} is not square; give a size to resize and crop to`);
  if (o.cropFirst && w !== h) {
    // numpy's img[(h - crop) // 2:(h + crop) // 2, (w - crop) // 2:(w + crop) // 2]
    const crop = Math.min(w, h), y0 = Math.floor((h - crop) / 2), x0 = Math.floor((w - crop) / 2);
    const sq = new Uint8Array(crop * crop * C);
    for (let y = 0; y < crop; y++) sq.set(px.subarray(((y + y0) * w + x0) * C, ((y + y0) * w + x0 + crop) * C), y * crop * C);
    px = sq;
    w = h = crop;
  }
  const scale = size / Math.min(w, h);
  if (scale !== 1) {
    const nw = w <= h ? size : roundHalfEven(w * scale);
    const nh = h <= w ? size : roundHalfEven(h * scale);
    px = resizeU8(px, w, h, C, nw, nh, o.interpolation ?? 'bicubic');
    w = nw;
    h = nh;
  }
  return { px, w, h };
}

/** Crop (center, or random from `aug`), flip (from `aug`), scale to [-1, 1]: [C, size, size] float32. */
export function cropFlip(r: Resized, o: PreprocessOptions, aug?: AugDraw): Float32Array {
  const C = o.channels ?? 3;
  const { px, w, h } = r;
  const size = Math.min(w, h);
  const random = aug !== undefined && (o.randomCrop ?? false);
  const y0 = random ? Math.min(Math.floor((h - size + 1) * aug.cropY), h - size) : Math.floor((h - size) / 2);
  const x0 = random ? Math.min(Math.floor((w - size + 1) * aug.cropX), w - size) : Math.floor((w - size) / 2);
  const flip = aug !== undefined && aug.flip < (o.flipP ?? 0);
  const out = new Float32Array(C * size * size);
  const plane = size * size;
  for (let y = 0; y < size; y++) {
    const src = ((y + y0) * w + x0) * C;
    for (let x = 0; x < size; x++) {
      const sx = flip ? size - 1 - x : x;
      for (let c = 0; c < C; c++) out[c * plane + y * size + x] = SIGNED[px[src + sx * C + c]];
    }
  }
  return out;
}

/** The whole pipeline: an 8-bit image → [C, size, size] float32 in [-1, 1]. `aug` undefined: center crop, no flip. */
export function preprocess(img: Image, o: PreprocessOptions, aug?: AugDraw, name = 'image'): Float32Array {
  return cropFlip(resizeShortSide(img, o, name), o, aug);
}
