// safetensors: little-endian u64 header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}), then raw data.

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import type { DType, TypedData } from '../engine/dtype.js';
import * as T from '../engine/index.js';

const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64' };

/** Element types by safetensors name (also used for torch storages): byte width and the engine dtype
 *  values are converted to (halves widen to float32, small integers to int32). */
export const ELEMENT_TYPES: Record<string, { bytes: number; ours: DType }> = {
  F32: { bytes: 4, ours: 'float32' }, F64: { bytes: 8, ours: 'float64' }, F16: { bytes: 2, ours: 'float32' },
  BF16: { bytes: 2, ours: 'float32' }, I64: { bytes: 8, ours: 'int64' }, I32: { bytes: 4, ours: 'int32' },
  I16: { bytes: 2, ours: 'int32' }, I8: { bytes: 1, ours: 'int32' }, U8: { bytes: 1, ours: 'int32' }, BOOL: { bytes: 1, ours: 'int32' },
};

/** Little-endian raw elements → a fresh typed array of the engine dtype. */
export function decodeElements(bytes: Uint8Array, elem: string): TypedData {
  const n = bytes.byteLength / ELEMENT_TYPES[elem].bytes;
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes); // a copy (Buffer#slice would not be)
  switch (elem) {
    case 'F32': return new Float32Array(aligned.buffer, aligned.byteOffset, n).slice();
    case 'F64': return new Float64Array(aligned.buffer, aligned.byteOffset, n).slice();
    case 'I64': return new BigInt64Array(aligned.buffer, aligned.byteOffset, n).slice();
    case 'I32': return new Int32Array(aligned.buffer, aligned.byteOffset, n).slice();
    case 'F16': return halfToFloat(bytes, false);
    case 'BF16': return halfToFloat(bytes, true);
    case 'I16': return Int32Array.from(new Int16Array(aligned.buffer, aligned.byteOffset, n));
    case 'I8': return Int32Array.from(new Int8Array(aligned.buffer, aligned.byteOffset, n));
    default: return Int32Array.from(bytes);
  }
}

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range of the values in the file. */
  begin: number;
  end: number;
}

/** Parse and validate a safetensors header through a byte-range reader (whole buffers and open files alike). */
export function parseSafetensorsHeader(
  readAt: (pos: number, len: number) => Uint8Array,
  fileSize: number,
  source: string,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  if (fileSize < 8) throw new Error(`${source}: file too short (${fileSize} bytes) to be safetensors`);
  const head = readAt(0, 8);
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  if (n > fileSize - 8) throw new Error(`${source}: header length ${n} exceeds file size ${fileSize} (truncated?)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(readAt(8, n)));
  } catch (e) {
    throw new Error(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const el = ELEMENT_TYPES[dtype];
    if (!el) throw new Error(`${source}: tensor ${name} has unsupported dtype ${dtype}`);
    const [b, e] = data_offsets;
    const count = shape.reduce((a, c) => a * c, 1);
    if (e - b !== count * el.bytes || base + e > fileSize) {
      throw new Error(`${source}: tensor ${name} (${dtype} [${shape}]) has data_offsets [${b}, ${e}] inconsistent with its shape or the file size ${fileSize} (truncated?)`);
    }
    entries.push({ name, dtype, shape, begin: base + b, end: base + e });
  }
  return { entries, metadata };
}

export interface SafetensorsFile {
  tensors: Map<string, T.Tensor>;
  metadata: Record<string, string>;
}

export function parseSafetensors(buf: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const { entries, metadata } = parseSafetensorsHeader((pos, len) => buf.subarray(pos, pos + len), buf.byteLength, source);
  const tensors = new Map<string, T.Tensor>();
  for (const e of entries) {
    tensors.set(e.name, T.keep(T.Tensor.fromData(decodeElements(buf.subarray(e.begin, e.end), e.dtype), e.shape)));
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(readFileSync(path), path);
}

/** IEEE half or bfloat16 → float32. */
export function halfToFloat(bytes: Uint8Array, bf16: boolean): Float32Array {
  const n = bytes.byteLength / 2;
  const out = new Float32Array(n);
  const u16 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f32 = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const h = u16.getUint16(2 * i, true);
    if (bf16) {
      f32.setUint32(4 * i, h << 16, true);
      continue;
    }
    const s = (h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    let bits: number;
    if (e === 0) {
      if (m === 0) bits = s;
      else {
        // subnormal: normalise
        let mm = m, ee = -1;
        do { ee++; mm <<= 1; } while ((mm & 0x400) === 0);
        bits = s | ((127 - 15 - ee) << 23) | ((mm & 0x3ff) << 13);
      }
    } else if (e === 31) bits = s | 0x7f800000 | (m << 13);
    else bits = s | ((e - 15 + 127) << 23) | (m << 13);
    f32.setUint32(4 * i, bits >>> 0, true);
  }
  return out;
}

export interface HeaderEntry {
  dtype: string;
  shape: readonly number[];
  /** Size in bytes of the tensor's data. */
  bytes: number;
}

/**
 * The bytes before the data section: u64 header length + JSON header (padded with spaces so the data
 * starts 8-byte aligned). Entries' data follow in the given order.
 */
export function encodeSafetensorsHeader(entries: [string, HeaderEntry][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, e] of entries) {
    header[name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [off, off + e.bytes] };
    off += e.bytes;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const hbytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hbytes.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.byteLength), true);
  out.set(hbytes, 8);
  return out;
}

export function serializeSafetensors(tensors: Map<string, T.Tensor> | Record<string, T.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors : new Map(Object.entries(tensors)))];
  const datas = entries.map(([, t]) => {
    const d = T.contiguousData(t);
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  });
  const head = encodeSafetensorsHeader(entries.map(([name, t], i) => [name, { dtype: TO_ST[t.dtype], shape: t.shape, bytes: datas[i].byteLength }]), metadata);
  const out = new Uint8Array(head.byteLength + datas.reduce((n, d) => n + d.byteLength, 0));
  out.set(head, 0);
  let p = head.byteLength;
  for (const d of datas) {
    out.set(d, p);
    p += d.byteLength;
  }
  return out;
}

/** Write atomically: to a temporary file, then rename (no half-written file is left on failure). */
export function writeSafetensors(path: string, tensors: Map<string, T.Tensor> | Record<string, T.Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export { writeFileAtomic };
