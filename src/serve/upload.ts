// Uploaded images (init image, mask): base64 (optionally a data: URL) or raw multipart bytes. The format
// and the dimensions are read from the header (PNG IHDR, JPEG SOFn) and checked against the limits
// before a single pixel is decoded; decoding happens later, in the generation thread.

import { HttpError, overLimit, type Limits } from './limits.js';

export interface Upload {
  bytes: Buffer;
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A base64 string or data URL → bytes (strict alphabet; whitespace allowed). */
export function decodeBase64Field(s: string, field: string): Buffer {
  let b64 = s;
  const m = /^data:image\/(png|jpeg|jpg);base64,/i.exec(s);
  if (m) b64 = s.slice(m[0].length);
  else if (s.startsWith('data:')) throw new HttpError(400, 'bad_image', `${field}: only data:image/png and data:image/jpeg URLs are accepted`);
  b64 = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw new HttpError(400, 'bad_image', `${field}: not valid base64`);
  return Buffer.from(b64, 'base64');
}

/** Format and declared size from the header; throws 400 for other formats, 413 over the limits. */
export function inspectImage(bytes: Buffer, field: string, limits: Limits): Upload {
  let dims: { format: 'png' | 'jpeg'; width: number; height: number } | null = null;
  if (bytes.length >= 24 && bytes.subarray(0, 8).equals(PNG_SIG)) {
    if (bytes.subarray(12, 16).toString('latin1') !== 'IHDR') throw new HttpError(400, 'bad_image', `${field}: PNG without an IHDR chunk first`);
    dims = { format: 'png', width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  } else if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    dims = jpegSize(bytes, field);
  } else {
    throw new HttpError(400, 'bad_image', `${field}: not a PNG or JPEG image`);
  }
  const { width, height } = dims;
  if (width < 1 || height < 1) throw new HttpError(400, 'bad_image', `${field}: declares an empty ${width}×${height} image`);
  if (width * height > limits.maxUploadPixels) throw overLimit('maxUploadPixels', `${field}: ${width}×${height} pixels =`, width * height, limits);
  const side = Math.max(width, height);
  if (side > limits.maxSize) throw new HttpError(413, 'over_limit', `${field}: ${width}×${height} has a side over this server's limit of ${limits.maxSize} px (--max-size)`, { limit: 'maxSize', max: limits.maxSize });
  return { bytes, ...dims };
}

/** Walks the JPEG markers up to the first start-of-frame. */
function jpegSize(b: Buffer, field: string): { format: 'jpeg'; width: number; height: number } {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) throw new HttpError(400, 'bad_image', `${field}: corrupt JPEG (no marker at byte ${p})`);
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    const len = b.readUInt16BE(p + 2);
    const isSOF = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSOF) {
      if (p + 9 > b.length) break;
      return { format: 'jpeg', height: b.readUInt16BE(p + 5), width: b.readUInt16BE(p + 7) };
    }
    if (marker === 0xd9 || marker === 0xda) break;
    p += 2 + len;
  }
  throw new HttpError(400, 'bad_image', `${field}: JPEG without a frame header`);
}
