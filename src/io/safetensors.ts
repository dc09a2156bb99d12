// safetensors: little-endian u64 header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}), then raw data.

import { closeSync, openSync, readFileSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { allocData, type DType } from '../engine/dtype.js';
import * as T from '../engine/index.js';

const FROM_ST: Record<string, DType> = { F32: 'float32', F64: 'float64', I32: 'int32', I64: 'int64' };
const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64' };
const WIDTH: Record<string, number> = { F32: 4, F64: 8, I32: 4, I64: 8, F16: 2, BF16: 2, U8: 1, I8: 1, BOOL: 1, I16: 2 };

export interface SafetensorsFile {
  tensors: Map<string, T.Tensor>;
  metadata: Record<string, string>;
}

export function parseSafetensors(buf: Uint8Array, source = 'safetensors'): SafetensorsFile {
  if (buf.byteLength < 8) throw new Error(`${source}: file too short (${buf.byteLength} bytes) to be safetensors`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > buf.byteLength - 8) throw new Error(`${source}: header length ${n} exceeds file size ${buf.byteLength}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, T.Tensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = WIDTH[dtype];
    let ours = FROM_ST[dtype];
    if (!width) throw new Error(`${source}: tensor ${name} has unknown dtype ${dtype}`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets;
    if (end - begin !== count * width || base + end > buf.byteLength) {
      throw new Error(`${source}: tensor ${name} (${dtype} [${shape}]) has data_offsets [${begin}, ${end}] inconsistent with its shape or the file size`);
    }
    const bytes = buf.subarray(base + begin, base + end);
    let data;
    if (ours) {
      data = allocData(ours, count);
      new Uint8Array(data.buffer).set(bytes);
    } else if (dtype === 'F16' || dtype === 'BF16') {
      ours = 'float32';
      data = halfToFloat(bytes, dtype === 'BF16');
    } else {
      ours = 'int32';
      data = new Int32Array(count);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < count; i++) {
        data[i] = dtype === 'I16' ? view.getInt16(2 * i, true) : dtype === 'I8' ? view.getInt8(i) : view.getUint8(i);
      }
    }
    tensors.set(name, T.keep(T.Tensor.fromData(data, shape)));
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

export function serializeSafetensors(tensors: Map<string, T.Tensor> | Record<string, T.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors : new Map(Object.entries(tensors)))];
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  const datas: Uint8Array[] = [];
  for (const [name, t] of entries) {
    const d = T.contiguousData(t);
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.shape], data_offsets: [off, off + bytes.byteLength] };
    datas.push(bytes);
    off += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' '; // align the data section to 8 bytes
  const hbytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hbytes.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.byteLength), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.byteLength;
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

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd = -1;
  try {
    fd = openSync(tmp, 'w');
    writeSync(fd, bytes);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}
