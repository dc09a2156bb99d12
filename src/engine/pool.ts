// A bounded pool of tensor buffers. Buffers of storages that the engine allocated (Tensor.empty) return
// here when their last view is disposed, and the next allocation of the same dtype and length reuses
// them (zero-filled) instead of asking V8 for a new ArrayBuffer. Reuse avoids page faults, zeroing of
// fresh pages and GC pressure, and keeps RSS flat in loops that dispose their tensors (tidy).
// Buffers handed to the engine by callers (Tensor.fromData) are never pooled: their owner may still use them.
// Size: LDM_POOL_MB (default 512); 0 disables pooling.

import { allocData, bytesPerElement, type DType, type TypedData } from './dtype.js';

const limitBytes = Math.max(0, Number(process.env.LDM_POOL_MB ?? 512)) * 1024 * 1024;
const free = new Map<string, TypedData[]>();
let heldBytes = 0;
let reused = 0;
let allocated = 0;

const key = (dtype: DType, n: number) => `${dtype}:${n}`;

// LDM_POOL_POISON=1 fills every uninitialised buffer with NaN (float) / -1 (int), so that a kernel that
// reads an output it was supposed to overwrite shows up in the tests instead of silently reading zeros.
const poison = process.env.LDM_POOL_POISON === '1';

/**
 * A buffer of n elements, reused from the pool when one of that size is free. zero=true fills it with
 * zeros; zero=false leaves stale values (for outputs that a kernel overwrites entirely).
 */
export function takeBuffer(dtype: DType, n: number, zero = true): TypedData {
  const list = free.get(key(dtype, n));
  let buf = list?.pop();
  if (buf) {
    heldBytes -= buf.byteLength;
    reused++;
    if (zero) buf.fill((dtype === 'int64' ? 0n : 0) as never);
  } else {
    allocated++;
    buf = allocData(dtype, n);
  }
  if (!zero && poison) buf.fill((dtype === 'int64' ? -1n : dtype === 'int32' ? -1 : NaN) as never);
  return buf;
}

/** Give a buffer back (dropped when the pool is full, and then freed by the GC). */
export function returnBuffer(buf: TypedData): void {
  if (buf.byteLength === 0 || heldBytes + buf.byteLength > limitBytes) return;
  const dtype: DType = buf instanceof Float32Array ? 'float32' : buf instanceof Float64Array ? 'float64' : buf instanceof Int32Array ? 'int32' : 'int64';
  const k = key(dtype, buf.length);
  let list = free.get(k);
  if (!list) free.set(k, (list = []));
  list.push(buf);
  heldBytes += buf.length * bytesPerElement(dtype);
}

/** Drop every pooled buffer (their memory goes back to the GC). */
export function clearPool(): void {
  free.clear();
  heldBytes = 0;
}

export function poolStats(): { heldBytes: number; limitBytes: number; reused: number; allocated: number } {
  return { heldBytes, limitBytes, reused, allocated };
}
