// The Tensor: a strided view (shape, strides, offset) over a reference-counted Storage.
//
// Memory policy (see docs/memory.md): tensor memory is ordinary JS typed-array memory, so the garbage
// collector is the backstop. On top of that, release is deliberate and deterministic:
//   * every tensor created inside `tidy(fn)` is disposed when fn returns, except what fn returns
//     (which moves to the enclosing scope) and what was `keep()`-ed;
//   * `t.dispose()` releases one reference to the storage; views share storage, so a storage's memory
//     is dropped only when its last view is disposed;
//   * a disposed tensor throws on any access, naming itself, instead of reading stale memory.
// Gradients written into leaf tensors (`.grad`) and parameters are never tracked by scopes.

import { dtypeOf, type DType, type TypedData } from './dtype.js';
import { returnBuffer, takeBuffer } from './pool.js';
import { contiguousStrides, fmt, forEachOffset, numel, type Shape } from './shape.js';

export class Storage {
  private _data: TypedData | null;
  refs = 0;
  /** pooled: the engine allocated the buffer, so it may be reused once the last view is disposed. */
  constructor(data: TypedData, readonly pooled = false) {
    this._data = data;
  }
  get data(): TypedData {
    if (this._data === null) throw new Error('tensor storage was disposed (use keep() or return it from tidy())');
    return this._data;
  }
  get released(): boolean {
    return this._data === null;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs > 0 || this._data === null) return;
    if (this.pooled) returnBuffer(this._data);
    this._data = null;
  }
}

/** A node of the autograd graph: how to turn the output's gradient into its inputs' gradients. */
export interface GradNode {
  readonly name: string;
  inputs: (Tensor | null)[];
  /** Returns one gradient per input (null where an input needs none). Runs under noGrad. */
  backward: ((grad: Tensor) => (Tensor | null)[]) | null;
}

// ---- scopes -------------------------------------------------------------------------------------------

const scopeStack: Set<Tensor>[] = [];

function track(t: Tensor): void {
  if (scopeStack.length > 0) scopeStack[scopeStack.length - 1].add(t);
}

/** Remove a tensor from scope tracking so that `tidy` leaves it alive. Returns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopeStack) s.delete(t);
  return t;
}

type Kept = Tensor | Kept[] | { [k: string]: Kept } | number | string | boolean | null | undefined | void;

function collect(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) for (const x of v) collect(x, out);
  else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out);
  }
}

/**
 * Run fn; dispose every tensor it created except those reachable from its result (tensors, arrays
 * and plain objects are searched). Returned tensors are handed to the enclosing scope, together with
 * the tensors their autograd graph still needs (a returned loss can be backpropagated outside the
 * scope; backward then drops the graph, and the enclosing scope or the GC frees those tensors).
 */
export function tidy<T extends Kept>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopeStack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopeStack.pop();
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  // Graph inputs created in this scope. Ancestors are always older than their descendants, so a
  // tensor from outside the scope cannot lead back into it: the walk stays within the scope.
  const pending = [...survivors];
  while (pending.length > 0) {
    const node = pending.pop()!.gradFn;
    if (!node) continue;
    for (const inp of node.inputs) {
      if (inp && scope.has(inp) && !survivors.has(inp)) {
        survivors.add(inp);
        pending.push(inp);
      }
    }
  }
  for (const t of scope) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}

/** Number of live tensors tracked by open scopes (for tests of the memory policy). */
export function trackedCount(): number {
  let n = 0;
  for (const s of scopeStack) n += s.size;
  return n;
}

// ---- the tensor ----------------------------------------------------------------------------------------

export class Tensor {
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  private _disposed = false;

  constructor(storage: Storage, shape: Shape, strides?: Shape, offset = 0) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtypeOf(storage.data);
    storage.retain();
    track(this);
  }

  /** A new contiguous tensor over `data` (not copied). */
  static fromData(data: TypedData, shape: Shape): Tensor {
    if (data.length !== numel(shape)) {
      throw new RangeError(`tensor: ${data.length} values cannot have shape ${fmt(shape)} (${numel(shape)} elements)`);
    }
    return new Tensor(new Storage(data), shape);
  }

  /** A zero-filled tensor. */
  static empty(shape: Shape, dtype: DType = 'float32'): Tensor {
    return Tensor.alloc(shape, dtype, true);
  }

  /** A tensor with unspecified contents: only for op outputs that a kernel overwrites entirely. */
  static uninit(shape: Shape, dtype: DType = 'float32'): Tensor {
    return Tensor.alloc(shape, dtype, false);
  }

  private static alloc(shape: Shape, dtype: DType, zero: boolean): Tensor {
    for (const s of shape) {
      if (!Number.isInteger(s) || s < 0) throw new RangeError(`tensor: invalid shape ${fmt(shape)}`);
    }
    return new Tensor(new Storage(takeBuffer(dtype, numel(shape), zero), true), shape);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get disposed(): boolean {
    return this._disposed;
  }

  /** The whole underlying buffer (index with offset/strides unless isContiguous()). */
  get data(): TypedData {
    if (this._disposed) throw new Error(`tensor ${fmt(this.shape)} ${this.dtype} was disposed`);
    return this.storage.data;
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** A view of the same storage with a different geometry (no copy, no autograd). */
  view_(shape: Shape, strides: Shape, offset: number): Tensor {
    return new Tensor(this.storage, shape, strides, offset);
  }

  /** Logical values in row-major order as plain numbers (int64 converted with Number()). */
  toArray(): number[] {
    const d = this.data;
    const out = new Array<number>(this.size);
    forEachOffset(this.shape, this.strides, this.offset, (i, p) => (out[i] = Number(d[p])));
    return out;
  }

  item(): number {
    if (this.size !== 1) throw new RangeError(`item: tensor of shape ${fmt(this.shape)} has ${this.size} elements, expected 1`);
    return Number(this.data[this.offset]);
  }

  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.storage.release();
    for (const s of scopeStack) s.delete(this);
    this.gradFn = null;
  }

  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}
