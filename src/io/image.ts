// Image files ↔ tensors. PNG through pngjs (any bit depth / colour type in, 8-bit RGB out), JPEG input
// through jpeg-js. Generation parameters travel in PNG text chunks (tEXt for Latin-1 text, iTXt for
// anything else), written between IHDR and the image data.
//
// Tensor conventions are the reference's: images enter the models as NCHW float32 in [-1, 1]
// (x/127.5 − 1) and leave as uint8 through clamp((x+1)/2, 0, 1)·255 with truncation (not rounding).

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { PNG } from 'pngjs';
import { checkJpeg, checkPng, decoderFailure, ImageError, MAX_PIXELS } from './image-check.js';
import { decodeJpegPixels } from './jpeg-decode.js';
import * as T from '../engine/index.js';

/** 8-bit pixels, row-major, `channels` interleaved values per pixel. */
export interface Image {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

export { ImageError, MAX_PIXELS };

// ---- files -----------------------------------------------------------------------------------------------

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Reads a PNG or JPEG file as 8-bit RGBA. */
export function readImage(path: string): Image {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new ImageError(`cannot read image ${path}: ${(e as Error).message}`);
  }
  return decodeImage(buf, path);
}

/** Decodes PNG or JPEG bytes as 8-bit RGBA; `source` names the input in errors. */
export function decodeImage(bytes: Uint8Array, source = 'image'): Image {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Structure and size are checked first (src/io/image-check.ts): no decoder sees a file declaring a huge image.
  if (buf.subarray(0, 8).equals(PNG_SIG)) {
    const { width, height } = checkPng(buf, source);
    let png: { width: number; height: number; data: Buffer };
    try {
      png = PNG.sync.read(buf);
    } catch (e) {
      throw new ImageError(`${source}: not a readable PNG (${decoderFailure(e)})`);
    }
    if (png.width !== width || png.height !== height || png.data.length !== width * height * 4) throw new ImageError(`${source}: not a readable PNG (decoded size differs from IHDR)`);
    return { width, height, channels: 4, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
  }
  if (buf[0] === 0xff && buf[1] === 0xd8) {
    const { width, height, firstScan } = checkJpeg(buf, source);
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = decodeJpegPixels(buf, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
    } catch (e) {
      throw new ImageError(`${source}: not a readable JPEG (${decoderFailure(e)} in the scans from byte ${firstScan})`);
    }
    if (img.width !== width || img.height !== height || img.data.length !== width * height * 4) throw new ImageError(`${source}: not a readable JPEG (decoded size differs from the frame header)`);
    return { width, height, channels: 4, data: img.data };
  }
  throw new ImageError(`${source}: unsupported image format (PNG and JPEG are supported)`);
}

/** Writes 8-bit RGB/RGBA/gray pixels as a PNG, with text chunks, atomically (temp file + rename). */
export function writePng(path: string, img: Image, text: Record<string, string> = {}): void {
  writeFileAtomic(path, encodePng(img, text));
}

/** 8-bit RGB/RGBA/gray pixels → PNG file bytes, with text chunks. */
export function encodePng(img: Image, text: Record<string, string> = {}): Buffer {
  // A plain { width, height, data } object, not a `new PNG` stream: each pngjs stream instance stays reachable
  // (≈ 36 KB per image), which made a loop writing images grow without bound.
  const rgba = { width: img.width, height: img.height, data: Buffer.from(toRGBA(img)) } as unknown as PNG;
  const encoded = PNG.sync.write(rgba, { colorType: img.channels === 4 ? 6 : img.channels === 3 ? 2 : 0, inputColorType: 6, inputHasAlpha: true });
  return insertTextChunks(encoded, text);
}

/** The text chunks (tEXt, and uncompressed iTXt) of a PNG file. */
export function readPngText(pathOrBuffer: string | Uint8Array): Record<string, string> {
  const buf = typeof pathOrBuffer === 'string' ? readFileSync(pathOrBuffer) : Buffer.from(pathOrBuffer);
  if (!buf.subarray(0, 8).equals(PNG_SIG)) throw new Error('readPngText: not a PNG');
  const out: Record<string, string> = {};
  for (const c of chunks(buf)) {
    if (c.type === 'tEXt') {
      const z = c.data.indexOf(0);
      out[c.data.subarray(0, z).toString('latin1')] = c.data.subarray(z + 1).toString('latin1');
    } else if (c.type === 'iTXt') {
      const z = c.data.indexOf(0);
      const key = c.data.subarray(0, z).toString('latin1');
      if (c.data[z + 1] !== 0) continue; // compressed iTXt: not written by us
      const lang = c.data.indexOf(0, z + 3);
      const tkey = c.data.indexOf(0, lang + 1);
      out[key] = c.data.subarray(tkey + 1).toString('utf8');
    }
  }
  return out;
}

function* chunks(buf: Buffer): Generator<{ type: string; data: Buffer; start: number; end: number }> {
  let p = 8;
  while (p + 12 <= buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.subarray(p + 4, p + 8).toString('latin1');
    yield { type, data: buf.subarray(p + 8, p + 8 + len), start: p, end: p + 12 + len };
    p += 12 + len;
  }
}

function insertTextChunks(png: Buffer, text: Record<string, string>): Buffer {
  const entries = Object.entries(text);
  if (entries.length === 0) return png;
  const ihdr = chunks(png).next().value!;
  const parts: Buffer[] = [png.subarray(0, ihdr.end)];
  for (const [key, value] of entries) {
    if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key) || key.startsWith(' ') || key.endsWith(' ')) {
      throw new Error(`PNG text keyword '${key}' must be 1–79 Latin-1 characters without leading/trailing spaces`);
    }
    const latin1 = /^[\x0a\x20-\x7e\xa1-\xff]*$/.test(value);
    const data = latin1
      ? Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0]), Buffer.from(value, 'latin1')])
      : Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(value, 'utf8')]);
    parts.push(chunk(latin1 ? 'tEXt' : 'iTXt', data));
  }
  parts.push(png.subarray(ihdr.end));
  return Buffer.concat(parts);
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function toRGBA(img: Image): Uint8Array {
  const n = img.width * img.height;
  if (img.data.length !== n * img.channels) throw new RangeError(`image: ${img.data.length} bytes for ${img.width}×${img.height}×${img.channels}`);
  if (img.channels === 4) return img.data;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    if (img.channels === 3) {
      out[4 * i] = img.data[3 * i];
      out[4 * i + 1] = img.data[3 * i + 1];
      out[4 * i + 2] = img.data[3 * i + 2];
    } else {
      out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = img.data[i];
    }
    out[4 * i + 3] = 255;
  }
  return out;
}

// ---- tensors ---------------------------------------------------------------------------------------------

/**
 * Image → [1, C, H, W] float32. mode 'rgb' (alpha dropped) or 'gray' (ITU-R 601-2 luma, like PIL's
 * convert('L')); range 'signed' gives x/127.5 − 1 ∈ [−1, 1], 'unit' gives x/255 ∈ [0, 1].
 */
/** PIL's "L" conversion of one RGB pixel: (R·299 + G·587 + B·114 + 500) / 1000, integer. */
export function pilGray(r: number, g: number, b: number): number {
  return Math.floor((r * 299 + g * 587 + b * 114 + 500) / 1000);
}

export function imageToTensor(img: Image, mode: 'rgb' | 'gray' = 'rgb', range: 'signed' | 'unit' = 'signed'): T.Tensor {
  const { width: W, height: H } = img;
  const rgba = toRGBA(img);
  const C = mode === 'rgb' ? 3 : 1;
  const out = new Float32Array(C * H * W);
  const f = range === 'signed' ? (v: number) => v / 127.5 - 1 : (v: number) => v / 255;
  for (let i = 0; i < H * W; i++) {
    if (mode === 'rgb') {
      for (let c = 0; c < 3; c++) out[c * H * W + i] = f(rgba[4 * i + c]);
    } else {
      out[i] = f(pilGray(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]));
    }
  }
  return T.tensor(out, [1, C, H, W]);
}

/** [B, 3|1, H, W] in [−1, 1] → B images: clamp((x+1)/2, 0, 1)·255 in float32, truncated to uint8. */
export function tensorToImages(x: T.Tensor, range: 'signed' | 'unit' = 'signed'): Image[] {
  if (x.ndim !== 4 || (x.shape[1] !== 3 && x.shape[1] !== 1)) throw new RangeError(`tensorToImages: expected [B, 3 or 1, H, W], got [${x.shape}]`);
  const [B, C, H, W] = x.shape;
  const v = T.contiguousData(T.cast(x, 'float32')) as Float32Array;
  const f = Math.fround;
  const images: Image[] = [];
  for (let b = 0; b < B; b++) {
    const data = new Uint8Array(H * W * C);
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < H * W; i++) {
        const raw = v[((b * C + c) * H * W) + i];
        let u = range === 'signed' ? f(f(raw + 1) / 2) : raw;
        u = Number.isNaN(u) ? 0 : Math.min(Math.max(u, 0), 1);
        data[i * C + c] = Math.trunc(f(255 * u));
      }
    }
    images.push({ width: W, height: H, channels: C as 1 | 3, data });
  }
  return images;
}

/** torchvision.utils.make_grid: `nrow` images per row, `padding` px of `padValue` around each. */
export function makeGrid(images: Image[], nrow = 8, padding = 2, padValue = 0): Image {
  if (images.length === 0) throw new RangeError('makeGrid: no images');
  const { width: w, height: h, channels: c } = images[0];
  for (const im of images) {
    if (im.width !== w || im.height !== h || im.channels !== c) throw new RangeError('makeGrid: images differ in size or channels');
  }
  const xmaps = Math.min(nrow, images.length);
  const ymaps = Math.ceil(images.length / xmaps);
  const W = xmaps * (w + padding) + padding, H = ymaps * (h + padding) + padding;
  const data = new Uint8Array(W * H * c).fill(padValue);
  images.forEach((im, k) => {
    const x0 = (k % xmaps) * (w + padding) + padding, y0 = Math.floor(k / xmaps) * (h + padding) + padding;
    for (let y = 0; y < h; y++) data.set(im.data.subarray(y * w * c, (y + 1) * w * c), ((y0 + y) * W + x0) * c);
  });
  return { width: W, height: H, channels: c, data };
}
