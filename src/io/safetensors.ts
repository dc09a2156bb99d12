// safetensors: little-endian u64 header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}), then raw data.

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import type { DType, TypedData } from '../engine/dtype.js';
import * as T from '../engine/index.js';

/** Our element types under their safetensors names. */
export const SAFETENSORS_DTYPE: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64' };

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

/** The largest JSON header accepted (the format's own limit is 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** A typed error for a malformed safetensors file; the message names the file and the tensor or offset. */
export class SafetensorsError extends Error {}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parse and validate a safetensors header through a byte-range reader (whole buffers and open files alike).
 * Every entry must have a known dtype, a shape of non-negative integers and data_offsets [begin, end] inside
 * the data section whose length matches shape × element size; no two tensors may share bytes.
 */
export function parseSafetensorsHeader(
  readAt: (pos: number, len: number) => Uint8Array,
  fileSize: number,
  source: string,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (fileSize < 8) fail(`file too short (${fileSize} bytes) to be safetensors`);
  const head = readAt(0, 8);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(fileSize - 8)) fail(`header length ${n64} (bytes 0–7) exceeds the file size ${fileSize} (truncated?)`);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit of the format`);
  if (n < 2) fail(`header length ${n} (bytes 0–7) is too small for a JSON header`);
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(readAt(8, n));
    const depth = jsonDepth(text);
    if (depth > 16) fail(`header nests ${depth} levels deep (a safetensors header has 3)`);
    header = JSON.parse(text);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    fail(`header (bytes 8–${8 + n}) is not valid JSON (${(e as Error).message.split('\n')[0].slice(0, 200)})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const base = 8 + n;
  const dataSize = fileSize - base;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!info || typeof info !== 'object' || Array.isArray(info)) fail('__metadata__ is not a JSON object of strings');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) if (typeof v !== 'string') fail(`__metadata__.${k} is not a string (got ${JSON.stringify(v)?.slice(0, 60)})`);
      metadata = info as Record<string, string>;
      continue;
    }
    const t = `tensor ${JSON.stringify(name)}`;
    if (!info || typeof info !== 'object' || Array.isArray(info)) fail(`${t} is not a JSON object`);
    const { dtype, shape, data_offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(ELEMENT_TYPES, dtype)) fail(`${t} has unsupported dtype ${JSON.stringify(dtype)} (known: ${Object.keys(ELEMENT_TYPES).join(', ')})`);
    const el = ELEMENT_TYPES[dtype as string];
    if (!Array.isArray(shape) || shape.length > 64 || !shape.every(isCount)) fail(`${t} has an invalid shape ${JSON.stringify(shape)?.slice(0, 100)} (expected a list of non-negative integers)`);
    if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every(isCount)) {
      fail(`${t} has invalid data_offsets ${JSON.stringify(data_offsets)?.slice(0, 100)} (expected [begin, end], non-negative integers)`);
    }
    const [b, e] = data_offsets as number[];
    if (b > e || e > dataSize) fail(`${t} has data_offsets [${b}, ${e}] outside the data section (${dataSize} bytes; truncated?)`);
    // shape × element size, exact while it is a safe integer (beyond that the tensor cannot fit anyway)
    let bytes = el.bytes;
    for (const d of shape as number[]) bytes = d === 0 || bytes === 0 ? 0 : bytes * d > Number.MAX_SAFE_INTEGER ? Infinity : bytes * d;
    if (e - b !== bytes) fail(`${t} (${dtype} [${shape}]) needs ${bytes === Infinity ? 'more than 2^53' : bytes} bytes but data_offsets [${b}, ${e}] hold ${e - b}`);
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin: base + b, end: base + e });
  }
  const byStart = entries.filter((x) => x.end > x.begin).sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < byStart.length; i++) {
    if (byStart[i].begin < byStart[i - 1].end) {
      fail(`tensors ${JSON.stringify(byStart[i - 1].name)} and ${JSON.stringify(byStart[i].name)} overlap (data_offsets [${byStart[i - 1].begin - base}, ${byStart[i - 1].end - base}] and [${byStart[i].begin - base}, ${byStart[i].end - base}])`);
    }
  }
  return { entries, metadata };
}

/** Deepest bracket nesting of a JSON text (outside strings), to refuse pathological headers before parsing. */
function jsonDepth(text: string): number {
  let depth = 0, max = 0, inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inStr = false;
    } else if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
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

/** A tensor's encoded data with its safetensors element type (e.g. F16 bytes made by io/half.ts). */
export interface RawEntry {
  dtype: string;
  shape: readonly number[];
  data: Uint8Array;
}

/** Header + data of entries already encoded, in the given order. */
export function serializeRaw(entries: [string, RawEntry][], metadata?: Record<string, string>): Uint8Array {
  const head = encodeSafetensorsHeader(entries.map(([name, e]) => [name, { dtype: e.dtype, shape: e.shape, bytes: e.data.byteLength }]), metadata);
  const out = new Uint8Array(head.byteLength + entries.reduce((n, [, e]) => n + e.data.byteLength, 0));
  out.set(head, 0);
  let p = head.byteLength;
  for (const [, e] of entries) {
    out.set(e.data, p);
    p += e.data.byteLength;
  }
  return out;
}

export function serializeSafetensors(tensors: Map<string, T.Tensor> | Record<string, T.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors : new Map(Object.entries(tensors)))];
  return serializeRaw(entries.map(([name, t]) => {
    const d = T.contiguousData(t);
    return [name, { dtype: SAFETENSORS_DTYPE[t.dtype], shape: t.shape, data: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) }];
  }), metadata);
}

/** Write atomically: to a temporary file, then rename (no half-written file is left on failure). */
export function writeSafetensors(path: string, tensors: Map<string, T.Tensor> | Record<string, T.Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

export { writeFileAtomic };
