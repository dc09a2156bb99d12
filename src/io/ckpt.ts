// Checkpoint files: PyTorch `.ckpt`/`.pt`/`.pth` (torch.save zip archives) and `.safetensors`, read lazily.
//
// (The legacy pre-1.6 stream format is read too: old LPIPS / torchvision weight files use it.)
// A torch.save zip holds `<prefix>/data.pkl` (a pickle of the saved object, tensors as persistent
// references to storages), `<prefix>/data/<key>` (raw storages, little-endian unless `byteorder` says
// otherwise) and `<prefix>/version`. The pickle is read with the restricted unpickler (src/io/pickle.ts):
// only the globals a state dict needs are constructed, a few bookkeeping classes of Lightning /
// OmegaConf / numpy are recorded inertly, and every other global is refused by name.
// Tensors stay on disk until asked for (`LazyTensor.load()` / `readInto()`), so a multi-GB checkpoint
// is never held twice in memory. Loading a state dict into a module lives above the models, in
// src/loader/checkpoint.ts.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as T from '../engine/index.js';
import type { DType } from '../engine/dtype.js';
import { BUILTIN_GLOBALS, PyObject, UnpicklingError, opaqueClass, unpickle, unpickleAt, type PyCallable } from './pickle.js';
import { decodeElements, ELEMENT_TYPES, encodeSafetensorsHeader, parseSafetensorsHeader, type HeaderEntry } from './safetensors.js';
import { writeAll, writeAtomic } from './atomic.js';
import { ZipReader } from './zip.js';

/** A typed error for a malformed checkpoint; the message names the file and the key, entry or value. */
export class CheckpointError extends Error {}

/** A short, readable rendering of an unpickled value for messages (never "[object Object]"). */
export function describeValue(v: unknown, depth = 0): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (depth > 2) return '…';
  if (Array.isArray(v)) return `(${v.slice(0, 6).map((x) => describeValue(x, depth + 1)).join(', ')}${v.length > 6 ? ', …' : ''})`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof PyObject) return `${v.cls} object`;
  if (v instanceof LazyTensor) return `tensor [${v.shape}]`;
  if (typeof v === 'object' && 'qualname' in v) return String((v as PyCallable).qualname);
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  return typeof v;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

// ---- element types ---------------------------------------------------------------------------------

/** torch.<Name>Storage → safetensors element type. */
const TORCH_STORAGES: Record<string, string> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL', UntypedStorage: 'U8',
};

// ---- lazy tensors ----------------------------------------------------------------------------------

/** Where a storage's bytes live: a reader of byte ranges relative to the storage start. */
interface StorageRef {
  key: string;
  elem: string;
  /** Byte length available for this storage. */
  byteLength: number;
  /** The bytes [start, start + length): into `into` (length bytes) when given, else a new array. */
  read(start: number, length: number, into?: Uint8Array): Uint8Array;
  bigEndian: boolean;
}

/** Reads byte ranges of an open file (all of each range, or an error naming the file). */
function fileReader(fd: number, path: string, size: number): (pos: number, len: number, into?: Uint8Array) => Uint8Array {
  return (pos, len, into) => {
    if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(len) || pos < 0 || len < 0 || pos + len > size) {
      throw new CheckpointError(`${path}: byte range [${pos}, ${pos + len}) is outside the file (${size} bytes; truncated?)`);
    }
    const b = into ?? new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = readSync(fd, b, done, Math.min(len - done, 1 << 30), pos + done);
      if (n === 0) throw new CheckpointError(`${path}: unexpected end of file at byte ${pos + done} (file has ${size} bytes; truncated?)`);
      done += n;
    }
    return b;
  };
}

/** A tensor whose values are still in the file. */
export class LazyTensor {
  constructor(
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    /** In elements. */
    readonly storageOffset: number,
    private readonly storage: StorageRef,
    readonly source: string,
  ) {}

  /** The element type as stored in the file (safetensors names: F32, F16, I64, ...). */
  get fileDtype(): string {
    return this.storage.elem;
  }
  /** The engine dtype `load()` returns (F16/BF16 widen to float32, small ints to int32). */
  get dtype(): DType {
    return ELEMENT_TYPES[this.storage.elem].ours;
  }
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /**
   * Refuse geometry that does not fit the storage: sizes and strides that are not non-negative integers,
   * a span beyond the storage, or more elements than the storage holds (zero or overlapping strides would
   * expand a few bytes of file into gigabytes of tensor).
   */
  check(key = '?'): void {
    const w = ELEMENT_TYPES[this.storage.elem].bytes;
    const what = `${this.source}: tensor ${key} (size [${this.shape}], strides [${this.strides}], offset ${this.storageOffset})`;
    if (this.shape.length !== this.strides.length) throw new CheckpointError(`${what} has ${this.shape.length} sizes but ${this.strides.length} strides`);
    if (!this.shape.every(isCount) || !this.strides.every(isCount) || !isCount(this.storageOffset)) throw new CheckpointError(`${what}: sizes, strides and offset must be non-negative integers`);
    const n = this.shape.reduce((a, b) => a * b, 1);
    if (n === 0) return;
    let hi = this.storageOffset;
    for (let i = 0; i < this.shape.length; i++) hi += (this.shape[i] - 1) * this.strides[i];
    if (!Number.isSafeInteger(hi) || (hi + 1) * w > this.storage.byteLength) {
      throw new CheckpointError(`${what} reaches element ${hi}, beyond its storage ${this.storage.key} (${this.storage.byteLength} bytes of ${this.storage.elem}; file corrupt?)`);
    }
    if (n * w > this.storage.byteLength) {
      throw new CheckpointError(`${what} has ${n} elements but its storage ${this.storage.key} holds only ${Math.floor(this.storage.byteLength / w)} (zero or overlapping strides are not loaded)`);
    }
  }

  /** The values as contiguous little-endian bytes in the file's element type. */
  rawBytes(): Uint8Array {
    this.check();
    const w = ELEMENT_TYPES[this.storage.elem].bytes;
    const n = this.size;
    if (n === 0) return new Uint8Array(0);
    const lo = this.storageOffset;
    let hi = this.storageOffset;
    for (let i = 0; i < this.shape.length; i++) hi += (this.shape[i] - 1) * this.strides[i];
    const contiguous = this.isContiguous();
    const span = this.storage.read(lo * w, (hi - lo + 1) * w);
    let out: Uint8Array;
    if (contiguous) out = span.byteLength === n * w ? span : span.slice(0, n * w);
    else {
      out = new Uint8Array(n * w);
      const nd = this.shape.length;
      const idx = new Array<number>(nd).fill(0);
      let p = this.storageOffset - lo;
      for (let i = 0; i < n; i++) {
        out.set(span.subarray(p * w, p * w + w), i * w);
        for (let k = nd - 1; k >= 0; k--) {
          idx[k]++;
          p += this.strides[k];
          if (idx[k] < this.shape[k]) break;
          p -= this.strides[k] * this.shape[k];
          idx[k] = 0;
        }
      }
    }
    if (this.storage.bigEndian && w > 1) {
      if (out === span) out = out.slice();
      for (let i = 0; i < out.length; i += w) out.subarray(i, i + w).reverse();
    }
    return out;
  }

  /** The values as an engine tensor (contiguous; F16/BF16 widened to float32). */
  load(): T.Tensor {
    return T.Tensor.fromData(decodeElements(this.rawBytes(), this.storage.elem), [...this.shape]);
  }

  /** Whether readInto can read the file's bytes straight into dst (float32 to float32, contiguous, little-endian). */
  private readsInPlace(dst: T.Tensor): boolean {
    return dst.dtype === 'float32' && this.storage.elem === 'F32' && !this.storage.bigEndian && this.size > 0 && this.isContiguous();
  }

  /** Whether the elements lie one after another in the storage, in row-major order. */
  private isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** Copy the values into a contiguous tensor of the same shape (casting to its dtype). */
  readInto(dst: T.Tensor, key = '?'): void {
    if (!dst.isContiguous()) throw new Error(`${this.source}: cannot load ${key} into a non-contiguous tensor`);
    if (dst.size !== this.size) throw new Error(`${this.source}: ${key} has ${this.size} values, destination has ${dst.size}`);
    if (this.readsInPlace(dst)) {
      // float32 values stored contiguously, little-endian: straight from the file into the tensor's memory.
      this.check();
      const d = dst.data as Float32Array;
      this.storage.read(this.storageOffset * 4, this.size * 4, new Uint8Array(d.buffer, d.byteOffset + dst.offset * 4, this.size * 4));
      return;
    }
    let vals = decodeElements(this.rawBytes(), this.storage.elem);
    if (T.dtypeOf(vals) !== dst.dtype) vals = T.contiguousData(T.cast(T.Tensor.fromData(vals, [vals.length]), dst.dtype));
    (dst.data as Float32Array).set(vals as Float32Array, dst.offset);
  }
}

// ---- the checkpoint ---------------------------------------------------------------------------------

export interface Checkpoint {
  path: string;
  format: 'torch-zip' | 'torch-legacy' | 'safetensors';
  /** The model weights under their original keys, in file order. */
  stateDict: Map<string, LazyTensor>;
  /** `global_step` / `epoch` of a Lightning checkpoint (from safetensors metadata when converted). */
  globalStep?: number;
  epoch?: number;
  /** The unpickled top-level object (torch) or the safetensors metadata. */
  top: unknown;
  close(): void;
}

export interface ReadCheckpointOptions {
  /** Extra fully-qualified class names to accept inertly (recorded, never run) in pickles. */
  allowGlobals?: string[];
}

/** Open a checkpoint; the format is detected from the content, not the file name. */
export function readCheckpoint(path: string, opts: ReadCheckpointOptions = {}): Checkpoint {
  const head = readHead(path, 16);
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return readTorchZip(path, opts);
  if (head.length >= 9 && head[8] === 0x7b) return readSafetensorsLazy(path);
  if (head.length >= 4 && head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a) return readTorchLegacy(path, opts);
  throw new CheckpointError(`${path}: not a checkpoint (neither a torch.save zip archive nor safetensors; ${head.length} bytes read${head.length === 0 ? ', file is empty' : ''})`);
}

function readHead(path: string, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

// Classes never accepted, even through allowGlobals.
const DENY = /^(os|posix|nt|subprocess|sys|shutil|socket|importlib|runpy|pickle|marshal|ctypes|code|pty|webbrowser|multiprocessing)\.|^(builtins|__builtin__)\.(eval|exec|compile|open|getattr|setattr|delattr|__import__|input|globals|locals|vars|breakpoint)$/;

// Bookkeeping classes found in Lightning checkpoints (callbacks, hyper-parameters, loop states):
// accepted as inert records.
const OPAQUE_PREFIXES = ['pytorch_lightning.', 'lightning.pytorch.', 'lightning.fabric.', 'lightning_fabric.', 'omegaconf.'];
const OPAQUE_NAMES = new Set([
  'argparse.Namespace', 'typing.Any', 'torch.device', 'torch.Size', 'numpy.dtype', 'numpy.ndarray',
  'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
  'torch.float32', 'torch.float16', 'torch.bfloat16', 'torch.float64', 'torch.int64', 'torch.int32', 'torch.uint8', 'torch.bool',
]);

function torchGlobals(source: string): Record<string, PyCallable> {
  const rebuildV2: PyCallable = {
    qualname: 'torch._utils._rebuild_tensor_v2',
    call: (args) => rebuildTensor(args, source),
  };
  const passThroughTensor = (qualname: string): PyCallable => ({
    qualname,
    call: (args) => {
      if (!(args[0] instanceof LazyTensor)) throw new UnpicklingError(`${source}: ${qualname} expects a tensor`);
      return args[0];
    },
  });
  const fromType: (q: string) => PyCallable = (q) => ({
    qualname: q,
    call: (args) => {
      const [func, , fargs] = args as [PyCallable, unknown, unknown[]];
      if (!func || typeof func.call !== 'function' || !Array.isArray(fargs)) throw new UnpicklingError(`${source}: malformed ${q}`);
      return func.call([...fargs]);
    },
  });
  const g: Record<string, PyCallable> = {
    'torch._utils._rebuild_tensor_v2': rebuildV2,
    'torch._utils._rebuild_tensor': { qualname: 'torch._utils._rebuild_tensor', call: (args) => rebuildTensor(args, source) },
    'torch._utils._rebuild_parameter': passThroughTensor('torch._utils._rebuild_parameter'),
    'torch._utils._rebuild_parameter_with_state': passThroughTensor('torch._utils._rebuild_parameter_with_state'),
    'torch._tensor._rebuild_from_type_v2': fromType('torch._tensor._rebuild_from_type_v2'),
    'torch._tensor._rebuild_from_type': fromType('torch._tensor._rebuild_from_type'),
    'torch.Tensor': { qualname: 'torch.Tensor', call: () => { throw new UnpicklingError(`${source}: torch.Tensor cannot be called`); } },
    'torch.nn.parameter.Parameter': passThroughTensor('torch.nn.parameter.Parameter'),
    'numpy.core.multiarray.scalar': { qualname: 'numpy.core.multiarray.scalar', call: (args) => numpyScalar(args) },
    'numpy._core.multiarray.scalar': { qualname: 'numpy._core.multiarray.scalar', call: (args) => numpyScalar(args) },
  };
  for (const name of Object.keys(TORCH_STORAGES)) g[`torch.${name}`] = { qualname: `torch.${name}`, call: () => { throw new UnpicklingError(`${source}: storages cannot be constructed`); } };
  return g;
}

function rebuildTensor(args: unknown[], source: string): LazyTensor {
  const [storage, offset, size, stride] = args as [StorageRef, number, number[], number[]];
  if (!storage || typeof (storage as StorageRef).read !== 'function') throw new UnpicklingError(`${source}: _rebuild_tensor without a storage (got ${describeValue(storage)})`);
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length > 64 || !size.every(isCount) || !stride.every(isCount) || !isCount(offset)) {
    throw new UnpicklingError(`${source}: tensor with size ${describeValue(size)}, stride ${describeValue(stride)}, storage offset ${describeValue(offset)}: expected tuples of non-negative integers and an integer offset`);
  }
  return new LazyTensor([...size], [...stride], offset, storage, source);
}

/** numpy scalars (e.g. a saved best score): decode the common numeric types, keep others inert. */
function numpyScalar(args: unknown[]): unknown {
  const [dtype, data] = args;
  const code = dtype instanceof PyObject && typeof dtype.args[0] === 'string' ? dtype.args[0] : '';
  if (data instanceof Uint8Array) {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (code === 'f8' && data.length === 8) return dv.getFloat64(0, true);
    if (code === 'f4' && data.length === 4) return dv.getFloat32(0, true);
    if (code === 'i8' && data.length === 8) return Number(dv.getBigInt64(0, true));
    if (code === 'i4' && data.length === 4) return dv.getInt32(0, true);
  }
  return new PyObject('numpy.core.multiarray.scalar', args);
}

/** The allow-list: state-dict globals, inert Lightning/OmegaConf/numpy bookkeeping, and explicit allowances. */
function makeResolver(path: string, opts: ReadCheckpointOptions): (module: string, name: string) => PyCallable | undefined {
  const torchG = torchGlobals(path);
  const extra = new Set(opts.allowGlobals ?? []);
  return (module, name) => {
    const q = `${module}.${name}`;
    if (DENY.test(q)) return undefined;
    const hit = BUILTIN_GLOBALS[q] ?? torchG[q];
    if (hit) return hit;
    if (OPAQUE_NAMES.has(q) || OPAQUE_PREFIXES.some((p) => q.startsWith(p)) || extra.has(q)) return opaqueClass(q);
    return undefined;
  };
}

function withHint<R>(fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UnpicklingError && /refusing to load global/.test(e.message)) {
      throw new UnpicklingError(`${e.message}. If it is harmless metadata, allow it explicitly (allowGlobals / --allow-global).`);
    }
    throw e;
  }
}

function storageElem(type: PyCallable | undefined, path: string): { typeName: string; elem: string } {
  const q = type && typeof type === 'object' && typeof type.qualname === 'string' ? type.qualname : '';
  const typeName = q.replace(/^torch\./, '');
  const elem = Object.hasOwn(TORCH_STORAGES, typeName) ? TORCH_STORAGES[typeName] : undefined;
  if (!elem) throw new UnpicklingError(`${path}: unsupported storage type ${q || describeValue(type)}`);
  return { typeName, elem };
}

/** data.pkl holds only the structure (keys, shapes, storage references): real ones are at most a few MB. */
const MAX_PICKLE_BYTES = 256 << 20;

function readTorchZip(path: string, opts: ReadCheckpointOptions): Checkpoint {
  const zip = new ZipReader(path);
  try {
    const pkl = [...zip.entries.keys()].find((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
    if (!pkl) throw new CheckpointError(`${path}: zip archive has no <name>/data.pkl (not a torch.save checkpoint)`);
    if (zip.entry(pkl).size > MAX_PICKLE_BYTES) throw new CheckpointError(`${path}: ${pkl} declares ${zip.entry(pkl).size} bytes, more than the ${MAX_PICKLE_BYTES} a pickled state dict needs (corrupt or hostile file)`);
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const bo = zip.entries.has(`${prefix}byteorder`) ? new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim() : 'little';
    if (bo !== 'little' && bo !== 'big') throw new CheckpointError(`${path}: unknown byteorder ${JSON.stringify(bo.slice(0, 40))}`);
    const resolveGlobal = makeResolver(path, opts);
    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: unknown): StorageRef => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new UnpicklingError(`${path}: unsupported persistent id ${describeValue(pid)}`);
      const [, type, key, , numel] = pid as [string, PyCallable, string, string, number];
      const { typeName, elem } = storageElem(type, path);
      if (typeof key !== 'string' || !isCount(numel)) throw new UnpicklingError(`${path}: storage reference with key ${describeValue(key)} and size ${describeValue(numel)} (expected a string and a non-negative integer)`);
      const k = key;
      const cached = storages.get(k);
      if (cached) return cached;
      const entry = `${prefix}data/${k}`;
      const ent = zip.entry(entry);
      const byteLength = Number(numel) * ELEMENT_TYPES[elem].bytes;
      if (typeName !== 'UntypedStorage' && ent.size < byteLength) {
        throw new CheckpointError(`${path}: storage ${entry} has ${ent.size} bytes, expected ${byteLength} (${numel} × ${typeName}; file corrupt?)`);
      }
      const ref: StorageRef = { key: entry, elem, byteLength: ent.size, bigEndian: bo === 'big', read: (start, length, into) => zip.readRange(entry, start, length, into) };
      storages.set(k, ref);
      return ref;
    };
    const top = withHint(() => unpickle(zip.read(pkl), { resolveGlobal, persistentLoad, source: `${path} (${pkl})` }));
    return { ...splitTop(top, path), path, format: 'torch-zip', top, close: () => zip.close() };
  } catch (e) {
    zip.close();
    throw e;
  }
}

/** torch.save's legacy format (PyTorch < 1.6, `_use_new_zipfile_serialization=False`): pickles of the magic
 *  number, protocol version and sys_info, the object (storages as persistent ids), the storage keys, then each
 *  storage as an int64 element count and its raw little-endian bytes, in key order. */
function readTorchLegacy(path: string, opts: ReadCheckpointOptions): Checkpoint {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const readAt = fileReader(fd, path, size);
    const resolveGlobal = makeResolver(path, opts);
    const roots = new Map<string, { elem: string; numel: number; offset: number | null }>();
    const persistentLoad = (pid: unknown): StorageRef => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new UnpicklingError(`${path}: unsupported persistent id ${describeValue(pid)}`);
      const [, type, rootKey, , numel, view] = pid as [string, PyCallable, unknown, string, number, unknown];
      const { elem } = storageElem(type, path);
      if (!(typeof rootKey === 'string' || (rootKey as unknown) instanceof Uint8Array) || !isCount(numel) || numel * ELEMENT_TYPES[elem].bytes > size) {
        throw new UnpicklingError(`${path}: storage reference with key ${describeValue(rootKey)} and size ${describeValue(numel)} (expected a key and at most the file's bytes)`);
      }
      if (Array.isArray(view) && view.length === 3 && (!isCount(view[1]) || !isCount(view[2]) || (view[1] as number) + (view[2] as number) > numel)) {
        throw new UnpicklingError(`${path}: storage view ${describeValue(view)} lies outside its storage of ${numel} elements`);
      }
      const k = keyString(rootKey);
      if (!roots.has(k)) roots.set(k, { elem, numel: Number(numel), offset: null });
      const root = roots.get(k)!;
      if (root.elem !== elem || root.numel !== numel) throw new UnpicklingError(`${path}: storage ${k} is referenced with two different types or sizes`);
      const w = ELEMENT_TYPES[elem].bytes;
      let start = 0, len = root.numel * w;
      if (Array.isArray(view) && view.length === 3) {
        start = Number(view[1]) * w;
        len = Number(view[2]) * w;
      }
      return {
        key: `${k}${start ? `@${start}` : ''}`, elem, byteLength: len, bigEndian: false,
        read: (s, l, into) => {
          if (root.offset === null) throw new CheckpointError(`${path}: storage ${k} has no data record (file corrupt?)`);
          return readAt(root.offset + start + s, l, into);
        },
      };
    };
    // The pickles sit at the start of the file; read a growing prefix until they parse.
    let chunk = Math.min(size, 1 << 22);
    for (;;) {
      const head = readAt(0, chunk);
      try {
        const src = `${path} (legacy torch.save)`;
        const base = { resolveGlobal, source: src };
        const magic = unpickleAt(head, 0, base);
        if (magic.value !== 0x1950a86a20f9469cfc6cn) throw new CheckpointError(`${path}: bad magic number (not a torch.save file)`);
        const proto = unpickleAt(head, magic.end, base);
        if (proto.value !== 1001) throw new CheckpointError(`${path}: unsupported legacy protocol version ${describeValue(proto.value)}`);
        const sysInfo = unpickleAt(head, proto.end, base);
        if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) throw new Error(`${path}: big-endian legacy checkpoints are not supported`);
        const main = withHint(() => unpickleAt(head, sysInfo.end, { ...base, persistentLoad }));
        const keys = unpickleAt(head, main.end, base);
        if (!Array.isArray(keys.value)) throw new CheckpointError(`${path}: corrupt storage key list (got ${describeValue(keys.value)})`);
        let pos = keys.end;
        for (const key of keys.value as unknown[]) {
          const r = roots.get(keyString(key));
          if (!r) throw new CheckpointError(`${path}: storage ${describeValue(key)} is listed but not referenced`);
          const n = Number(new DataView(readAt(pos, 8).buffer).getBigInt64(0, true));
          if (r.offset !== null) throw new CheckpointError(`${path}: storage ${describeValue(key)} is listed twice`);
          if (n !== r.numel) throw new CheckpointError(`${path}: storage ${describeValue(key)} has ${n} elements, expected ${r.numel} (file corrupt?)`);
          r.offset = pos + 8;
          pos += 8 + n * ELEMENT_TYPES[r.elem].bytes;
          if (pos > size) throw new CheckpointError(`${path}: storage ${describeValue(key)} extends past the end of the file (${size} bytes; truncated?)`);
        }
        let closed = false;
        return { ...splitTop(main.value, path), path, format: 'torch-legacy', top: main.value, close: () => { if (!closed) closeSync(fd); closed = true; } };
      } catch (e) {
        if (e instanceof UnpicklingError && /truncated pickle data/.test(e.message) && chunk < size) {
          chunk = Math.min(size, chunk * 4);
          continue;
        }
        throw e;
      }
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Storage keys are str, or bytes in files written by Python 2. */
function keyString(k: unknown): string {
  return k instanceof Uint8Array ? new TextDecoder('latin1').decode(k) : String(k);
}

/** Find the weights in the top-level object: `{"state_dict": {...}, "global_step": n, ...}` or a bare state dict. */
function splitTop(top: unknown, path: string): { stateDict: Map<string, LazyTensor>; globalStep?: number; epoch?: number } {
  if (!(top instanceof Map)) throw new CheckpointError(`${path}: the saved object is not a dict (got ${describeValue(top)})`);
  const sdObj = top.has('state_dict') ? top.get('state_dict') : top;
  if (!(sdObj instanceof Map)) throw new CheckpointError(`${path}: "state_dict" is not a dict (got ${describeValue(sdObj)})`);
  const stateDict = new Map<string, LazyTensor>();
  for (const [k, v] of sdObj) {
    if (v instanceof LazyTensor) {
      if (typeof k !== 'string') throw new CheckpointError(`${path}: state_dict key ${describeValue(k)} is not a string`);
      v.check(k);
      stateDict.set(k, v);
    } else if (sdObj !== top) throw new CheckpointError(`${path}: state_dict entry ${describeValue(k)} is not a tensor (got ${describeValue(v)})`);
  }
  if (sdObj === top && stateDict.size === 0) throw new CheckpointError(`${path}: no "state_dict" and no tensors at the top level`);
  const num = (k: string) => (typeof top.get(k) === 'number' ? (top.get(k) as number) : undefined);
  return { stateDict, globalStep: num('global_step'), epoch: num('epoch') };
}

function readSafetensorsLazy(path: string): Checkpoint {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const readAt = fileReader(fd, path, fileSize);
    const { entries, metadata } = parseSafetensorsHeader(readAt, fileSize, path);
    const stateDict = new Map<string, LazyTensor>();
    for (const { name, dtype, shape, begin, end } of entries) {
      const ref: StorageRef = { key: name, elem: dtype, byteLength: end - begin, bigEndian: false, read: (s, l, into) => readAt(begin + s, l, into) };
      stateDict.set(name, new LazyTensor(shape, T.contiguousStrides(shape), 0, ref, path));
    }
    const int = (k: string) => (metadata[k] !== undefined && /^-?\d+$/.test(metadata[k]) ? Number(metadata[k]) : undefined);
    let closed = false;
    return {
      path, format: 'safetensors', stateDict, top: metadata, globalStep: int('global_step'), epoch: int('epoch'),
      close: () => { if (!closed) closeSync(fd); closed = true; },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

// ---- conversion -----------------------------------------------------------------------------------

/** Write a checkpoint's state dict as safetensors (same keys and element types, metadata global_step/epoch), atomically. */
export function convertToSafetensors(inPath: string, outPath: string, opts: ReadCheckpointOptions = {}): { tensors: number; bytes: number } {
  const c = readCheckpoint(inPath, opts);
  try {
    const meta: Record<string, string> = { format: 'pt' };
    if (c.globalStep !== undefined) meta.global_step = String(c.globalStep);
    if (c.epoch !== undefined) meta.epoch = String(c.epoch);
    const entries = [...c.stateDict].map(([k, t]): [string, HeaderEntry] => [k, { dtype: t.fileDtype, shape: t.shape, bytes: t.size * ELEMENT_TYPES[t.fileDtype].bytes }]);
    const head = encodeSafetensorsHeader(entries, meta);
    writeAtomic(outPath, (fd) => {
      writeAll(fd, head);
      for (const [, t] of c.stateDict) writeAll(fd, t.rawBytes());
    });
    const off = entries.reduce((n, [, e]) => n + e.bytes, 0);
    return { tensors: c.stateDict.size, bytes: head.byteLength + off };
  } finally {
    c.close();
  }
}

