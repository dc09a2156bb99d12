// Writers for the fuzzer's hand-made checkpoints: a zip archive with controllable directory fields and a
// tiny pickle emitter (the opcodes torch.save uses plus the call opcodes an attacker would use).

import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/io/zip.js';
import { concat, enc } from './rng.js';

export interface ZipIn {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Overrides of the directory fields (sizes as written, before ZIP64). */
  crc?: number;
  size?: number;
  csize?: number;
  /** Write size/csize/offset as 0xffffffff with a ZIP64 extra field holding these values. */
  zip64?: { size?: bigint; csize?: bigint; offset?: bigint };
  /** Raw central extra field (replaces the ZIP64 one); `extraLen` may lie about its length. */
  extra?: Uint8Array;
  extraLen?: number;
}

export function writeZip(entries: ZipIn[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const e of entries) {
    const name = enc(e.name);
    const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = e.crc ?? crc32(e.data);
    const h = new Uint8Array(30 + name.length);
    const hv = new DataView(h.buffer);
    hv.setUint32(0, 0x04034b50, true);
    hv.setUint16(4, 20, true);
    hv.setUint16(8, e.deflate ? 8 : 0, true);
    hv.setUint32(14, crc, true);
    hv.setUint32(18, body.length, true);
    hv.setUint32(22, e.data.length, true);
    hv.setUint16(26, name.length, true);
    h.set(name, 30);
    let extra = e.extra ?? new Uint8Array(0);
    if (e.zip64 && !e.extra) {
      const vals = [e.zip64.size, e.zip64.csize, e.zip64.offset].filter((v) => v !== undefined) as bigint[];
      extra = new Uint8Array(4 + 8 * vals.length);
      const xv = new DataView(extra.buffer);
      xv.setUint16(0, 1, true);
      xv.setUint16(2, 8 * vals.length, true);
      vals.forEach((v, i) => xv.setBigUint64(4 + 8 * i, BigInt.asUintN(64, v), true));
    }
    const c = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, e.deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, e.zip64?.csize !== undefined ? 0xffffffff : (e.csize ?? body.length) >>> 0, true);
    cv.setUint32(24, e.zip64?.size !== undefined ? 0xffffffff : (e.size ?? e.data.length) >>> 0, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, e.extraLen ?? extra.length, true);
    cv.setUint32(42, e.zip64?.offset !== undefined ? 0xffffffff : off, true);
    c.set(name, 46);
    c.set(extra, 46 + name.length);
    locals.push(h, body);
    central.push(c);
    off += h.length + body.length;
  }
  const cd = concat(...central);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cd.length, true);
  ev.setUint32(16, off, true);
  return concat(...locals, cd, eocd);
}

// ---- pickles ------------------------------------------------------------------------------------------

/** A pickle value for `emit`: raw opcodes, or plain values. */
export type PV = number | bigint | string | boolean | null | PV[] | { dict: [PV, PV][] } | { raw: Uint8Array } | { global: [string, string]; args?: PV[] };

const u32 = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n >>> 0, true); return b; };

export function emit(v: PV): Uint8Array {
  if (v === null) return Uint8Array.of(0x4e);
  if (v === true) return Uint8Array.of(0x88);
  if (v === false) return Uint8Array.of(0x89);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) { const b = new Uint8Array(5); b[0] = 0x4a; new DataView(b.buffer).setInt32(1, v, true); return b; }
    if (Number.isInteger(v)) return emit(BigInt(v));
    const b = new Uint8Array(9); b[0] = 0x47; new DataView(b.buffer).setFloat64(1, v, false); return b;
  }
  if (typeof v === 'bigint') {
    const bytes: number[] = [];
    let x = v;
    do { bytes.push(Number(BigInt.asUintN(8, x))); x >>= 8n; } while (!(x === 0n && (bytes[bytes.length - 1] & 0x80) === 0) && !(x === -1n && (bytes[bytes.length - 1] & 0x80) !== 0));
    return concat(Uint8Array.of(0x8a, bytes.length), Uint8Array.from(bytes));
  }
  if (typeof v === 'string') { const s = enc(v); return concat(Uint8Array.of(0x58), u32(s.length), s); }
  if (Array.isArray(v)) return concat(Uint8Array.of(0x28), ...v.map(emit), Uint8Array.of(0x74)); // MARK ... TUPLE
  if ('raw' in v) return v.raw;
  if ('dict' in v) return concat(Uint8Array.of(0x7d, 0x28), ...v.dict.flatMap(([k, x]) => [emit(k), emit(x)]), Uint8Array.of(0x75));
  const g = concat(Uint8Array.of(0x63), enc(`${v.global[0]}\n${v.global[1]}\n`));
  return v.args ? concat(g, emit(v.args), Uint8Array.of(0x52)) : g; // GLOBAL [args REDUCE]
}

export const pickle = (v: PV) => concat(Uint8Array.of(0x80, 2), emit(v), Uint8Array.of(0x2e));

/** A persistent storage reference as torch.save writes it, followed by BINPERSID. */
export function storageRef(type: string, key: string, numel: PV): PV {
  return { raw: concat(emit(['storage', { global: ['torch', type] }, key, 'cpu', numel]), Uint8Array.of(0x51)) };
}

export function rebuild(storage: PV, offset: PV, size: PV, stride: PV): PV {
  return { global: ['torch._utils', '_rebuild_tensor_v2'], args: [storage, offset, size, stride, false, { global: ['collections', 'OrderedDict'], args: [] }] };
}

/** A torch.save zip of `{state_dict: tensors}` with the given storages. */
export function torchZip(sd: [string, PV][], storages: [string, Uint8Array][], extra: Partial<ZipIn> = {}): Uint8Array {
  const pkl = pickle({ dict: [['state_dict', { dict: sd }]] });
  return writeZip([
    { name: 'archive/data.pkl', data: pkl, ...extra },
    ...storages.map(([k, d]) => ({ name: `archive/data/${k}`, data: d })),
    { name: 'archive/version', data: enc('3\n') },
  ]);
}
