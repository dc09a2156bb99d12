// A minimal random-access ZIP reader over a file descriptor, for PyTorch's zip checkpoints.
//
// Only the central directory and the few entries asked for are read, so a multi-GB checkpoint is never
// held in one buffer. PyTorch writes every entry uncompressed ("stored"); deflated entries are inflated
// with node:zlib when small enough to read whole, with the output bounded by the declared size. ZIP64 (files
// or entries over 4 GiB) is supported. Every directory value is checked against the file before it is used
// (sizes, offsets, extra fields), and entries are CRC-checked: whole reads directly, ranges of stored
// entries by one pass over the entry before the first range is returned.

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

/** Entries read whole (deflated ones, pickles) may not be larger than this. */
export const MAX_WHOLE_ENTRY = 1 << 30;

/** A typed error for a malformed or corrupt archive; the message names the file and the entry or offset. */
export class ZipError extends Error {}

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
  private verified = new Set<string>();

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
    if (this.fd < 0) throw new ZipError(`${this.path}: zip reader is closed`);
    if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(length) || pos < 0 || length < 0 || pos + length > this.fileSize) {
      throw new ZipError(`${this.path}: byte range [${pos}, ${pos + length}) is outside the file (${this.fileSize} bytes; truncated or corrupt?)`);
    }
    const buf = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      // readSync takes at most 2 GiB at a time.
      const n = readSync(this.fd, buf, done, Math.min(length - done, 1 << 30), pos + done);
      if (n === 0) throw new ZipError(`${this.path}: unexpected end of file at byte ${pos + done} (file has ${this.fileSize} bytes; truncated?)`);
      done += n;
    }
    return buf;
  }

  private readCentralDirectory(): void {
    const p = this.path;
    const fail = (msg: string): never => {
      throw new ZipError(`${p}: ${msg}`);
    };
    // The end-of-central-directory record is in the last 22 + 65535 bytes (its comment is at most 64 KiB).
    const tailLen = Math.min(this.fileSize, 22 + 65535 + 20);
    if (this.fileSize < 22) fail(`file too short (${this.fileSize} bytes) to be a zip archive`);
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
    if (eocd < 0) fail('not a zip archive (no end-of-central-directory record; truncated or not a PyTorch zip checkpoint)');
    let count = dv.getUint16(eocd + 10, true);
    let cdSize = dv.getUint32(eocd + 12, true);
    let cdOffset = dv.getUint32(eocd + 16, true);
    const locPos = eocd - 20;
    if (locPos >= 0 && dv.getUint32(locPos, true) === SIG_EOCD64_LOCATOR) {
      const eocd64Pos = this.bounded(dv.getBigUint64(locPos + 8, true), this.fileSize - 56, `zip64 end-of-central-directory offset (at byte ${tailPos + locPos + 8})`);
      const rec = this.readAt(eocd64Pos, 56);
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== SIG_EOCD64) fail(`corrupt zip64 end-of-central-directory record at byte ${eocd64Pos}`);
      count = this.bounded(rv.getBigUint64(32, true), this.fileSize, `zip64 entry count (at byte ${eocd64Pos + 32})`);
      cdSize = this.bounded(rv.getBigUint64(40, true), this.fileSize, `zip64 central directory size (at byte ${eocd64Pos + 40})`);
      cdOffset = this.bounded(rv.getBigUint64(48, true), this.fileSize, `zip64 central directory offset (at byte ${eocd64Pos + 48})`);
    }
    if (cdOffset + cdSize > this.fileSize) {
      fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) lies beyond the end of the file (${this.fileSize} bytes; truncated?)`);
    }
    if (count * 46 > cdSize) fail(`${count} entries cannot fit in a central directory of ${cdSize} bytes (corrupt end-of-central-directory record)`);
    const cd = this.readAt(cdOffset, cdSize);
    const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    const dec = new TextDecoder();
    let o = 0;
    for (let k = 0; k < count; k++) {
      const at = cdOffset + o;
      if (o + 46 > cdSize || cv.getUint32(o, true) !== SIG_CENTRAL) fail(`corrupt central directory entry ${k} at byte ${at}`);
      const method = cv.getUint16(o + 10, true);
      const crc32 = cv.getUint32(o + 16, true);
      let compressedSize = cv.getUint32(o + 20, true);
      let size = cv.getUint32(o + 24, true);
      const nameLen = cv.getUint16(o + 28, true);
      const extraLen = cv.getUint16(o + 30, true);
      const commentLen = cv.getUint16(o + 32, true);
      let headerOffset = cv.getUint32(o + 42, true);
      if (o + 46 + nameLen + extraLen + commentLen > cdSize) fail(`central directory entry ${k} at byte ${at}: name, extra field and comment (${nameLen} + ${extraLen} + ${commentLen} bytes) run past the directory`);
      const name = dec.decode(cd.subarray(o + 46, o + 46 + nameLen));
      // ZIP64 extended information (header id 1): the fields saturated at 0xffffffff, in this order.
      let e = o + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = cv.getUint16(e, true), len = cv.getUint16(e + 2, true);
        if (e + 4 + len > eEnd) fail(`entry ${name}: extra field 0x${id.toString(16)} at byte ${cdOffset + e} declares ${len} bytes, more than its ${eEnd - e - 4}`);
        if (id === 1) {
          let q = e + 4;
          const next = (what: string): number => {
            if (q + 8 > e + 4 + len) fail(`entry ${name}: ZIP64 extra field at byte ${cdOffset + e} is too short for the ${what}`);
            const v = cv.getBigUint64(q, true);
            q += 8;
            return this.bounded(v, what === 'size' ? Number.MAX_SAFE_INTEGER : this.fileSize, `ZIP64 ${what} of entry ${name} (at byte ${cdOffset + q - 8})`);
          };
          if (size === 0xffffffff) size = next('size');
          if (compressedSize === 0xffffffff) compressedSize = next('compressed size');
          if (headerOffset === 0xffffffff) headerOffset = next('local header offset');
        }
        e += 4 + len;
      }
      if (headerOffset + 30 > this.fileSize) fail(`entry ${name}: local header offset ${headerOffset} lies beyond the end of the file (${this.fileSize} bytes)`);
      if (compressedSize > this.fileSize) fail(`entry ${name}: compressed size ${compressedSize} exceeds the file size ${this.fileSize} (truncated or corrupt?)`);
      if (method === 0 && size !== compressedSize) fail(`stored entry ${name} declares ${size} bytes but ${compressedSize} compressed bytes`);
      this.entries.set(name, { name, method, compressedSize, size, crc32, headerOffset });
      o = eEnd + commentLen;
    }
  }

  /** A 64-bit directory value as a number, refused when beyond `max` (or 2^53). */
  private bounded(v: bigint, max: number, what: string): number {
    if (v > BigInt(Math.max(0, max))) throw new ZipError(`${this.path}: ${what} is ${v}, beyond the file (${this.fileSize} bytes; corrupt archive)`);
    return Number(v);
  }

  /** Absolute position of an entry's data (after its local header, whose extra field may differ from the central one). */
  dataOffset(name: string): number {
    const cached = this.dataOffsets.get(name);
    if (cached !== undefined) return cached;
    const ent = this.entry(name);
    const h = this.readAt(ent.headerOffset, 30);
    const hv = new DataView(h.buffer);
    if (hv.getUint32(0, true) !== SIG_LOCAL) throw new ZipError(`${this.path}: corrupt local header for ${name} at byte ${ent.headerOffset}`);
    const pos = ent.headerOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (pos + ent.compressedSize > this.fileSize) {
      throw new ZipError(`${this.path}: entry ${name} ([${pos}, ${pos + ent.compressedSize})) extends past the end of the file (${this.fileSize} bytes; truncated?)`);
    }
    this.dataOffsets.set(name, pos);
    return pos;
  }

  entry(name: string): ZipEntry {
    const ent = this.entries.get(name);
    if (!ent) throw new ZipError(`${this.path}: archive has no entry ${name}`);
    return ent;
  }

  /** The whole (decompressed) content of an entry; `verify` checks its CRC-32. */
  read(name: string, verify = true): Uint8Array {
    const ent = this.entry(name);
    if (ent.size > MAX_WHOLE_ENTRY) throw new ZipError(`${this.path}: entry ${name} declares ${ent.size} bytes, more than the ${MAX_WHOLE_ENTRY} read whole (corrupt?)`);
    const raw = this.readAt(this.dataOffset(name), ent.compressedSize);
    let out: Uint8Array;
    if (ent.method === 0) out = raw;
    else if (ent.method === 8) {
      try {
        out = new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(1, ent.size) }));
      } catch (e) {
        const big = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        throw new ZipError(`${this.path}: entry ${name} ${big ? `inflates to more than its declared ${ent.size} bytes` : `does not inflate (${(e as Error).message})`} (file is corrupt)`);
      }
    } else throw new ZipError(`${this.path}: entry ${name} uses unsupported compression method ${ent.method}`);
    if (out.byteLength !== ent.size) throw new ZipError(`${this.path}: entry ${name} has ${out.byteLength} bytes, directory says ${ent.size}`);
    if (verify && crc32(out) !== ent.crc32) throw new ZipError(`${this.path}: CRC-32 mismatch in entry ${name} (file is corrupt)`);
    if (verify) this.verified.add(name);
    return out;
  }

  /** Read `length` bytes starting `start` bytes into an entry (random access for stored entries). The entry's
   *  CRC-32 is checked before its first bytes are returned. */
  readRange(name: string, start: number, length: number, into?: Uint8Array): Uint8Array {
    const ent = this.entry(name);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 || start + length > ent.size) {
      throw new ZipError(`${this.path}: range [${start}, ${start + length}) is outside entry ${name} (${ent.size} bytes)`);
    }
    if (ent.method !== 0) {
      const all = this.read(name);
      const part = all.subarray(start, start + length);
      if (into) { into.set(part); return into; }
      return part;
    }
    const whole = start === 0 && length === ent.size;
    if (!whole) this.verifyStored(name);
    const out = this.readAt(this.dataOffset(name) + start, length, into);
    if (whole && !this.verified.has(name)) {
      if (crc32(out) !== ent.crc32) throw new ZipError(`${this.path}: CRC-32 mismatch in entry ${name} (file is corrupt)`);
      this.verified.add(name);
    }
    return out;
  }

  /** CRC-check a stored entry in 16 MiB pieces (once). */
  private verifyStored(name: string): void {
    if (this.verified.has(name)) return;
    const ent = this.entry(name);
    const pos = this.dataOffset(name);
    const buf = new Uint8Array(Math.min(ent.size, 1 << 24));
    let c = 0;
    for (let done = 0; done < ent.size;) {
      const n = Math.min(buf.length, ent.size - done);
      c = crc32(this.readAt(pos + done, n, buf).subarray(0, n), c);
      done += n;
    }
    if (c !== ent.crc32) throw new ZipError(`${this.path}: CRC-32 mismatch in entry ${name} (file is corrupt)`);
    this.verified.add(name);
  }
}

let CRC_TABLE: Uint32Array | null = null;

/** CRC-32 of `bytes`; pass the previous result as `prev` to continue over several pieces. */
export function crc32(bytes: Uint8Array, prev = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
