// Structure checks run on PNG and JPEG bytes before any decoder sees them: chunk / segment lengths inside
// the file, a supported header, and a pixel count under a bound, so that a few bytes declaring a huge
// image are refused before anything is allocated or inflated (the PNG decoder would otherwise size its
// zlib buffers by the declared dimensions).

import { inflateSync } from 'node:zlib';

/** Largest image decoded: 2^25 pixels (5792 × 5792, or 8192 × 4096). */
export const MAX_PIXELS = 1 << 25;

export class ImageError extends Error {}

/** Errors of a structure check read `<file>: not a readable PNG: <what is wrong, where>`. */
const failure = (source: string, format: 'PNG' | 'JPEG') => (msg: string): never => {
  throw new ImageError(`${source}: not a readable ${format}: ${msg}`);
};

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Validate a PNG's chunk layout and IHDR; an interlaced image's data is inflated once with the exact bound. */
export function checkPng(buf: Uint8Array, source: string): { width: number; height: number } {
  const fail = failure(source, 'PNG');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 8, ihdr: { width: number; height: number; depth: number; colour: number; interlace: number } | null = null;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (p < buf.length && !sawEnd) {
    if (p + 12 > buf.length) fail(`truncated chunk header at byte ${p} (file has ${buf.length} bytes)`);
    const len = dv.getUint32(p);
    const type = String.fromCharCode(buf[p + 4], buf[p + 5], buf[p + 6], buf[p + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`invalid chunk type at byte ${p + 4} (corrupt file)`);
    if (len > 0x7fffffff || p + 12 + len > buf.length) fail(`chunk ${type} at byte ${p} declares ${len} bytes, beyond the end of the file (${buf.length} bytes; truncated?)`);
    const data = buf.subarray(p + 8, p + 8 + len);
    if (!ihdr && type !== 'IHDR') fail(`first chunk is ${type} at byte ${p}, expected IHDR`);
    if (type === 'IHDR') {
      if (ihdr) fail(`second IHDR chunk at byte ${p}`);
      if (len !== 13) fail(`IHDR chunk at byte ${p} has ${len} bytes, expected 13`);
      const width = dv.getUint32(p + 8), height = dv.getUint32(p + 12);
      const [depth, colour, comp, filter, interlace] = data.subarray(8, 13);
      if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) fail(`IHDR declares ${width} × ${height} pixels (each side must be 1 … 2^31 − 1)`);
      if (width * height > MAX_PIXELS) fail(`IHDR declares ${width} × ${height} = ${width * height} pixels, more than the ${MAX_PIXELS} this reader decodes`);
      if (!PNG_DEPTHS[colour]?.includes(depth)) fail(`IHDR: bit depth ${depth} with colour type ${colour} is not a valid PNG combination`);
      if (comp !== 0 || filter !== 0 || interlace > 1) fail(`IHDR: compression ${comp}, filter ${filter}, interlace ${interlace} (expected 0, 0, 0 or 1)`);
      ihdr = { width, height, depth, colour, interlace };
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') sawEnd = true;
    p += 12 + len;
  }
  if (!ihdr) fail('no IHDR chunk');
  if (idat.length === 0) fail('no IDAT chunk (no image data)');
  const { width, height, depth, colour, interlace } = ihdr!;
  const bits = PNG_CHANNELS[colour] * depth;
  const rowBytes = (w: number) => Math.ceil((w * bits) / 8) + 1;
  if (interlace) {
    // The PNG decoder inflates interlaced data without a bound: inflate it once here with the exact size.
    let need = 0;
    for (const [x0, y0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
      if (pw > 0 && ph > 0) need += rowBytes(pw) * ph;
    }
    let total = 0;
    for (const d of idat) total += d.length;
    const all = new Uint8Array(total);
    let o = 0;
    for (const d of idat) { all.set(d, o); o += d.length; }
    try {
      inflateSync(all, { maxOutputLength: need });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') fail(`interlaced image data inflates to more than the ${need} bytes ${width} × ${height} needs`);
      fail(`image data does not inflate (${(e as Error).message})`);
    }
  }
  return { width, height };
}

const SOF_SUPPORTED = new Set([0xc0, 0xc1, 0xc2]);
const SOF_OTHER = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Walk a JPEG's marker segments: lengths inside the file, one supported SOF with a bounded size, a scan. */
export function checkJpeg(buf: Uint8Array, source: string): { width: number; height: number; firstScan: number } {
  const fail = failure(source, 'JPEG');
  let p = 2, sof: { width: number; height: number } | null = null, firstScan = -1;
  while (p < buf.length) {
    if (buf[p] !== 0xff) fail(`expected a marker at byte ${p}, found 0x${buf[p].toString(16)} (corrupt file)`);
    while (buf[p + 1] === 0xff) p++; // fill bytes
    if (p + 1 >= buf.length) fail(`truncated marker at byte ${p}`);
    const m = buf[p + 1];
    if (m === 0xd9) break; // EOI
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { p += 2; continue; }
    if (p + 4 > buf.length) fail(`truncated segment ff${m.toString(16)} at byte ${p}`);
    const len = (buf[p + 2] << 8) | buf[p + 3];
    if (len < 2 || p + 2 + len > buf.length) fail(`segment ff${m.toString(16)} at byte ${p} declares ${len} bytes, beyond the end of the file (${buf.length} bytes; truncated?)`);
    if (SOF_OTHER.has(m)) fail(`unsupported JPEG coding (marker ff${m.toString(16)} at byte ${p}: lossless, hierarchical or arithmetic-coded; baseline and progressive are supported)`);
    if (SOF_SUPPORTED.has(m)) {
      if (sof) fail(`second frame header (ff${m.toString(16)}) at byte ${p}`);
      if (len < 8) fail(`frame header at byte ${p} is too short (${len} bytes)`);
      const precision = buf[p + 4], height = (buf[p + 5] << 8) | buf[p + 6], width = (buf[p + 7] << 8) | buf[p + 8], nc = buf[p + 9];
      if (precision !== 8) fail(`frame header at byte ${p}: ${precision}-bit samples (8-bit JPEG is supported)`);
      if (width === 0 || height === 0) fail(`frame header at byte ${p} declares ${width} × ${height} pixels`);
      if (width * height > MAX_PIXELS) fail(`frame header at byte ${p} declares ${width} × ${height} = ${width * height} pixels, more than the ${MAX_PIXELS} this reader decodes`);
      if (nc !== 1 && nc !== 3 && nc !== 4) fail(`frame header at byte ${p} declares ${nc} components (1, 3 or 4 expected)`);
      if (len !== 8 + 3 * nc) fail(`frame header at byte ${p} has ${len} bytes for ${nc} components (expected ${8 + 3 * nc})`);
      for (let c = 0; c < nc; c++) {
        const hv = buf[p + 11 + 3 * c], h = hv >> 4, v = hv & 15, tq = buf[p + 12 + 3 * c];
        if (h < 1 || h > 4 || v < 1 || v > 4) fail(`frame header at byte ${p}: component ${c + 1} has sampling factors ${h}×${v} (1 … 4 expected)`);
        if (tq > 3) fail(`frame header at byte ${p}: component ${c + 1} names quantisation table ${tq} (0 … 3)`);
      }
      sof = { width, height };
    }
    if (m === 0xda) {
      if (!sof) fail(`scan at byte ${p} before any frame header`);
      if (firstScan < 0) firstScan = p;
      // skip the entropy-coded data: to the next marker that is not a stuffed 0xff00 or a restart marker
      let q = p + 2 + len;
      while (q + 1 < buf.length && !(buf[q] === 0xff && buf[q + 1] !== 0 && !(buf[q + 1] >= 0xd0 && buf[q + 1] <= 0xd7))) q++;
      p = q;
      if (q + 1 >= buf.length) break; // no EOI: the decoder decides whether the data suffice
      continue;
    }
    p += 2 + len;
  }
  if (!sof) fail('no frame header (SOF0/1/2)');
  if (firstScan < 0) fail('no scan (SOS): the file has no image data');
  return { ...sof!, firstScan };
}

/** A decoder's exception as words for the user: internal JS errors and decoder internals are not shown. */
export function decoderFailure(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  if (/maxMemoryUsageInMB|maxResolutionInMP/.test(m)) return 'decoding would need more memory than allowed';
  if (e instanceof TypeError || e instanceof RangeError || /Cannot read|is not|undefined|marker|Invalid|out of range|JpegImage/i.test(m)) return 'corrupt or truncated compressed data';
  return m;
}
