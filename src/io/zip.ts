// A minimal random-access ZIP reader over a file descriptor, for PyTorch's zip checkpoints.
//
// Only the central directory and the few entries asked for are read, so a multi-GB checkpoint is never
// held in one buffer. PyTorch writes every entry uncompressed ("stored"); deflated entries are inflated
// with node:zlib when small enough to read whole. ZIP64 (files or entries over 4 GiB) is supported.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  readonly fileSize: number;
  private fd: number;
  private dataOffsets = new Map<string, number>();

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileSize = fstatSync(this.fd).size;
      this.readCentralDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Read `length` bytes at absolute file position `pos`; throws naming the file when the file is short. */
  readAt(pos: number, length: number, into?: Uint8Array): Uint8Array {
    if (this.fd < 0) throw new Error(`${this.path}: zip reader is closed`);
    const buf = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      // readSync takes at most 2 GiB at a time.
      const n = readSync(this.fd, buf, done, Math.min(length - done, 1 << 30), pos + done);
      if (n === 0) throw new Error(`${this.path}: unexpected end of file at byte ${pos + done} (file has ${this.fileSize} bytes; truncated?)`);
      done += n;
    }
    return buf;
  }

  private readCentralDirectory(): void {
    const p = this.path;
    // The end-of-central-directory record is in the last 22 + 65535 bytes (its comment is at most 64 KiB).
    const tailLen = Math.min(this.fileSize, 22 + 65535 + 20);
    if (this.fileSize < 22) throw new Error(`${p}: file too short (${this.fileSize} bytes) to be a zip archive`);
    const tailPos = this.fileSize - tailLen;
    const tail = this.readAt(tailPos, tailLen);
    const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (dv.getUint32(i, true) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`${p}: not a zip archive (no end-of-central-directory record; truncated or not a PyTorch zip checkpoint)`);
    let count = dv.getUint16(eocd + 10, true);
    let cdSize = dv.getUint32(eocd + 12, true);
    let cdOffset = dv.getUint32(eocd + 16, true);
    const locPos = eocd - 20;
    if (locPos >= 0 && dv.getUint32(locPos, true) === SIG_EOCD64_LOCATOR) {
      const eocd64Pos = Number(dv.getBigUint64(locPos + 8, true));
      const rec = this.readAt(eocd64Pos, 56);
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== SIG_EOCD64) throw new Error(`${p}: corrupt zip64 end-of-central-directory record at byte ${eocd64Pos}`);
      count = Number(rv.getBigUint64(32, true));
      cdSize = Number(rv.getBigUint64(40, true));
      cdOffset = Number(rv.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > this.fileSize) {
      throw new Error(`${p}: central directory [${cdOffset}, ${cdOffset + cdSize}) lies beyond the end of the file (${this.fileSize} bytes; truncated?)`);
    }
    const cd = this.readAt(cdOffset, cdSize);
    const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    const dec = new TextDecoder();
    let o = 0;
    for (let k = 0; k < count; k++) {
      if (o + 46 > cdSize || cv.getUint32(o, true) !== SIG_CENTRAL) throw new Error(`${p}: corrupt central directory entry ${k} at byte ${cdOffset + o}`);
      const method = cv.getUint16(o + 10, true);
      const crc32 = cv.getUint32(o + 16, true);
      let compressedSize = cv.getUint32(o + 20, true);
      let size = cv.getUint32(o + 24, true);
      const nameLen = cv.getUint16(o + 28, true);
      const extraLen = cv.getUint16(o + 30, true);
      const commentLen = cv.getUint16(o + 32, true);
      let headerOffset = cv.getUint32(o + 42, true);
      const name = dec.decode(cd.subarray(o + 46, o + 46 + nameLen));
      // ZIP64 extended information (header id 1): the fields saturated at 0xffffffff, in this order.
      let e = o + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = cv.getUint16(e, true), len = cv.getUint16(e + 2, true);
        if (id === 1) {
          let q = e + 4;
          if (size === 0xffffffff) { size = Number(cv.getBigUint64(q, true)); q += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = Number(cv.getBigUint64(q, true)); q += 8; }
          if (headerOffset === 0xffffffff) { headerOffset = Number(cv.getBigUint64(q, true)); q += 8; }
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, crc32, headerOffset });
      o = eEnd + commentLen;
    }
  }

  /** Absolute position of an entry's data (after its local header, whose extra field may differ from the central one). */
  dataOffset(name: string): number {
    const cached = this.dataOffsets.get(name);
    if (cached !== undefined) return cached;
    const ent = this.entry(name);
    const h = this.readAt(ent.headerOffset, 30);
    const hv = new DataView(h.buffer);
    if (hv.getUint32(0, true) !== SIG_LOCAL) throw new Error(`${this.path}: corrupt local header for ${name} at byte ${ent.headerOffset}`);
    const pos = ent.headerOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (pos + ent.compressedSize > this.fileSize) {
      throw new Error(`${this.path}: entry ${name} ([${pos}, ${pos + ent.compressedSize})) extends past the end of the file (${this.fileSize} bytes; truncated?)`);
    }
    this.dataOffsets.set(name, pos);
    return pos;
  }

  entry(name: string): ZipEntry {
    const ent = this.entries.get(name);
    if (!ent) throw new Error(`${this.path}: archive has no entry ${name}`);
    return ent;
  }

  /** The whole (decompressed) content of an entry; `verify` checks its CRC-32. */
  read(name: string, verify = true): Uint8Array {
    const ent = this.entry(name);
    const raw = this.readAt(this.dataOffset(name), ent.compressedSize);
    let out: Uint8Array;
    if (ent.method === 0) out = raw;
    else if (ent.method === 8) out = new Uint8Array(inflateRawSync(raw));
    else throw new Error(`${this.path}: entry ${name} uses unsupported compression method ${ent.method}`);
    if (out.byteLength !== ent.size) throw new Error(`${this.path}: entry ${name} has ${out.byteLength} bytes, directory says ${ent.size}`);
    if (verify && crc32(out) !== ent.crc32) throw new Error(`${this.path}: CRC-32 mismatch in entry ${name} (file is corrupt)`);
    return out;
  }

  /** Read `length` bytes starting `start` bytes into a stored entry (random access, no full read). */
  readRange(name: string, start: number, length: number, into?: Uint8Array): Uint8Array {
    const ent = this.entry(name);
    if (ent.method !== 0) {
      const all = this.read(name);
      const part = all.subarray(start, start + length);
      if (into) { into.set(part); return into; }
      return part;
    }
    if (start < 0 || start + length > ent.size) throw new Error(`${this.path}: range [${start}, ${start + length}) is outside entry ${name} (${ent.size} bytes)`);
    return this.readAt(this.dataOffset(name) + start, length, into);
  }
}

let CRC_TABLE: Uint32Array | null = null;

export function crc32(bytes: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
