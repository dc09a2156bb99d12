// PNG and JPEG mutators: IHDR / SOF dimensions, chunk and segment lengths (CRCs fixed up so the decoder sees
// the change), interlaced inflation bombs, scan parameters and restart markers, plus the generic mutators.

import { deflateSync } from 'node:zlib';
import { crc32 } from '../../src/io/image.js';
import { concat, generic, INTERESTING, type Rng } from './rng.js';
import type { Mutated } from './mut-ckpt.js';

// ---- PNG -----------------------------------------------------------------------------------------------

interface Chunk { type: string; data: Uint8Array }

function pngChunks(b: Uint8Array): Chunk[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Chunk[] = [];
  for (let p = 8; p + 12 <= b.length;) {
    const len = dv.getUint32(p);
    out.push({ type: String.fromCharCode(...b.subarray(p + 4, p + 8)), data: b.slice(p + 8, p + 8 + len) });
    p += 12 + len;
  }
  return out;
}

export function pngFile(chunks: Chunk[], lenOverride?: Map<number, number>): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)];
  chunks.forEach((c, i) => {
    const h = new Uint8Array(8);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, lenOverride?.get(i) ?? c.data.length);
    for (let k = 0; k < 4; k++) h[4 + k] = c.type.charCodeAt(k);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, crc32(concat(h.subarray(4), c.data)));
    parts.push(h, c.data, crc);
  });
  return concat(...parts);
}

export function ihdr(w: number, h: number, depth: number, colour: number, interlace: number): Chunk {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, w >>> 0);
  dv.setUint32(4, h >>> 0);
  d.set([depth, colour, 0, 0, interlace], 8);
  return { type: 'IHDR', data: d };
}

/** A PNG whose IDAT inflates to `n` bytes of zeros (filter 0 rows) while declaring `w × h`. */
export function inflationBomb(w: number, h: number, n: number, interlace: number): Uint8Array {
  return pngFile([ihdr(w, h, 8, 6, interlace), { type: 'IDAT', data: new Uint8Array(deflateSync(new Uint8Array(n), { level: 9 })) }, { type: 'IEND', data: new Uint8Array(0) }]);
}

export function mutatePng(seed: { bytes: Uint8Array }, r: Rng): Mutated {
  if (r.chance(0.3)) return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
  const cs = pngChunks(seed.bytes);
  const k = r.int(9);
  const hd = cs[0].data;
  const dv = new DataView(hd.buffer, hd.byteOffset, hd.byteLength);
  let how: string;
  switch (k) {
    case 0: case 1: {
      const w = r.pick([100000, 2147483647, 0, 20000, 65536, 1, 0xffffffff, 46341]);
      const h = r.pick([100000, 1, 20000, 0, 2147483647, 3]);
      dv.setUint32(0, w >>> 0); dv.setUint32(4, h >>> 0);
      how = `IHDR ${w}×${h}`;
      break;
    }
    case 2: { hd[8] = r.pick([1, 2, 4, 8, 16, 0, 3, 32]); hd[9] = r.pick([0, 2, 3, 4, 6, 1, 7]); hd[12] = r.pick([0, 1, 2]); how = `depth ${hd[8]} colour ${hd[9]} interlace ${hd[12]}`; break; }
    case 3: { // chunk length lies (CRC computed over the real data)
      const i = r.int(cs.length);
      const bytes = pngFile(cs, new Map([[i, r.pick(INTERESTING) >>> 0]]));
      return { bytes, how: `length of chunk ${i} (${cs[i].type})` };
    }
    case 4: { // interlaced / plain inflation bomb
      const w = r.pick([20000, 4000, 100000]), h = r.pick([20000, 4000, 100000]);
      const n = r.pick([16 << 20, 64 << 20]);
      return { bytes: inflationBomb(w, h, n, r.int(2)), how: `inflation bomb ${w}×${h} → ${n}` };
    }
    case 5: { // reorder / duplicate / drop chunks
      const i = r.int(cs.length);
      if (r.chance(0.5)) cs.splice(i, 1); else cs.splice(r.int(cs.length), 0, cs[i]);
      how = `chunk ${i} dropped/duplicated`;
      break;
    }
    case 6: { // IDAT data flipped with a valid CRC
      const ids = cs.filter((c) => c.type === 'IDAT');
      const c = r.pick(ids);
      c.data = generic(c.data, r);
      how = 'IDAT bytes (CRC fixed)';
      break;
    }
    case 7: { // a PLTE / tRNS / text chunk of odd size
      cs.splice(1, 0, { type: r.pick(['PLTE', 'tRNS', 'tEXt', 'iTXt', 'zTXt', 'gAMA', 'sBIT']), data: new Uint8Array(r.pick([0, 1, 2, 769, 300])).map(() => r.int(256)) });
      how = 'extra ancillary chunk';
      break;
    }
    default: { // set interlace and keep the data (wrong pass layout)
      hd[12] = 1;
      how = 'interlace flag set';
    }
  }
  return { bytes: pngFile(cs), how };
}

// ---- JPEG ----------------------------------------------------------------------------------------------

interface Seg { marker: number; start: number; len: number }

function jpegSegments(b: Uint8Array): Seg[] {
  const out: Seg[] = [];
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const m = b[p + 1];
    const len = (b[p + 2] << 8) | b[p + 3];
    out.push({ marker: m, start: p, len });
    if (m === 0xda) {
      // skip the entropy-coded data to the next non-RST marker
      let q = p + 2 + len;
      while (q + 1 < b.length && !(b[q] === 0xff && b[q + 1] !== 0 && (b[q + 1] < 0xd0 || b[q + 1] > 0xd7))) q++;
      p = q;
    } else p += 2 + len;
  }
  return out;
}

export function mutateJpeg(seed: { bytes: Uint8Array }, r: Rng): Mutated {
  if (r.chance(0.3)) return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
  const b = seed.bytes.slice();
  const segs = jpegSegments(b);
  const sof = segs.find((s) => s.marker === 0xc0 || s.marker === 0xc2 || s.marker === 0xc1)!;
  const k = r.int(8);
  const set16 = (p: number, v: number) => { b[p] = (v >> 8) & 0xff; b[p + 1] = v & 0xff; };
  switch (k) {
    case 0: case 1: {
      const h = r.pick([65535, 0, 1, 50000, 100000 & 0xffff, 20000]), w = r.pick([65535, 0, 1, 50000, 20000]);
      set16(sof.start + 5, h); set16(sof.start + 7, w);
      return { bytes: b, how: `SOF ${w}×${h}` };
    }
    case 2: { // components: count, sampling factors, table ids
      const p = sof.start + 9 + 3 * r.int(Math.max(1, b[sof.start + 9])) + 1;
      const what = r.int(3);
      if (what === 0) b[sof.start + 9] = r.pick([0, 2, 4, 255]);
      else if (what === 1) b[p + 1] = r.pick([0x00, 0x44, 0xff, 0x41, 0x14, 0x0f]);
      else b[p + 2] = r.pick([4, 255, 3]);
      return { bytes: b, how: 'SOF component fields' };
    }
    case 3: { // a segment length lies
      const s = r.pick(segs);
      set16(s.start + 2, r.pick([0, 1, 2, 0xffff, s.len + 1, s.len - 1]));
      return { bytes: b, how: `length of marker ff${s.marker.toString(16)}` };
    }
    case 4: { // scan parameters (Ss, Se, Ah/Al) and table selectors
      const sos = r.pick(segs.filter((s) => s.marker === 0xda));
      const n = b[sos.start + 4];
      const p = sos.start + 5 + 2 * n;
      const f = r.int(4);
      if (f === 0) b[p] = r.pick([0, 1, 63, 64, 255]);
      else if (f === 1) b[p + 1] = r.pick([0, 63, 64, 255]);
      else if (f === 2) b[p + 2] = r.pick([0x00, 0x11, 0xff, 0x0d, 0xe0]);
      else b[sos.start + 6] = r.pick([0x00, 0x44, 0xff]);
      return { bytes: b, how: 'scan parameters' };
    }
    case 5: { // the restart interval
      const dri = segs.find((s) => s.marker === 0xdd);
      if (dri) { set16(dri.start + 4, r.pick([0, 1, 2, 7, 65535])); return { bytes: b, how: 'restart interval' }; }
      const ins = Uint8Array.of(0xff, 0xdd, 0, 4, 0, r.pick([1, 2, 5]));
      return { bytes: concat(b.subarray(0, 2), ins, b.subarray(2)), how: 'restart interval added' };
    }
    case 6: { // restart markers removed / renumbered inside the scans
      const pos: number[] = [];
      for (let i = 0; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] >= 0xd0 && b[i + 1] <= 0xd7) pos.push(i);
      if (!pos.length) break;
      const p = r.pick(pos);
      if (r.chance(0.5)) return { bytes: concat(b.subarray(0, p), b.subarray(p + 2)), how: 'a restart marker removed' };
      b[p + 1] = 0xd0 + r.int(8);
      return { bytes: b, how: 'a restart marker renumbered' };
    }
    default: { // Huffman / quantisation table bytes
      const ts = segs.filter((s) => s.marker === 0xc4 || s.marker === 0xdb);
      const s = r.pick(ts);
      const p = s.start + 4 + r.int(Math.max(1, s.len - 2));
      b[p] = r.pick([0, 0xff, 0x10, 0x1f, r.int(256)]);
      return { bytes: b, how: `table byte in ff${s.marker.toString(16)}` };
    }
  }
  return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
}
