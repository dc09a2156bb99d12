// A restricted Python unpickler (protocols 0–5, the opcodes torch.save and Lightning emit).
//
// It never executes anything: every GLOBAL is resolved through a caller-supplied table of known
// constructors, and any name not in the table is refused with an error naming it. Python values map to
// JS as: None → null, bool → boolean, int → number (bigint when beyond 2^53), float → number,
// str → string, bytes → Uint8Array, list/tuple → array (tuples are frozen), dict → Map, set → Set.
// Objects of allowed-but-inert classes become `PyObject`s that only record their class, arguments and state.

/** A callable the unpickler may invoke for REDUCE / NEWOBJ / INST / OBJ. */
export interface PyCallable {
  readonly qualname: string;
  call(args: unknown[], kwargs?: Map<unknown, unknown>): unknown;
}

/** An inert record of an object of an allowed class (nothing of the class runs). */
export class PyObject {
  state: unknown = undefined;
  constructor(readonly cls: string, readonly args: unknown[] = []) {}
}

export type GlobalResolver = (module: string, name: string) => PyCallable | undefined;

export interface UnpickleOptions {
  /** Resolve `module.name` to a callable, or return undefined to refuse it. */
  resolveGlobal: GlobalResolver;
  /** BINPERSID / PERSID: turn a persistent id into a value (PyTorch: storages). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Named in error messages. */
  source?: string;
}

export class UnpicklingError extends Error {}

/** An inert class whose instances are recorded as PyObject (for Lightning callbacks, hparams, ...). */
export function opaqueClass(qualname: string): PyCallable {
  return { qualname, call: (args) => new PyObject(qualname, args) };
}

/** Builtins that build plain data and run no user code. */
export const BUILTIN_GLOBALS: Record<string, PyCallable> = {
  'collections.OrderedDict': {
    qualname: 'collections.OrderedDict',
    call: (args) => {
      const m = new Map<unknown, unknown>();
      if (args.length > 0 && args[0] != null) for (const [k, v] of pairsOf(args[0], 'OrderedDict')) m.set(k, v);
      return m;
    },
  },
  'builtins.set': { qualname: 'builtins.set', call: (args) => new Set(args.length ? iterOf(args[0], 'set') : []) },
  'builtins.frozenset': { qualname: 'builtins.frozenset', call: (args) => new Set(args.length ? iterOf(args[0], 'frozenset') : []) },
  'builtins.bytearray': {
    qualname: 'builtins.bytearray',
    call: (args) => (args.length === 0 ? new Uint8Array(0) : args[0] instanceof Uint8Array ? args[0] : encodeLatin1(String(args[0]))),
  },
  'builtins.slice': { qualname: 'builtins.slice', call: (args) => new PyObject('builtins.slice', args) },
  'builtins.complex': { qualname: 'builtins.complex', call: (args) => new PyObject('builtins.complex', args) },
  // Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1').
  '_codecs.encode': {
    qualname: '_codecs.encode',
    call: (args) => {
      const [s, enc] = args as [string, string | undefined];
      if (typeof s !== 'string') throw new UnpicklingError('_codecs.encode: expected a str argument');
      if (enc !== undefined && enc !== 'latin1' && enc !== 'latin-1') throw new UnpicklingError(`_codecs.encode: unsupported encoding ${enc}`);
      return encodeLatin1(s);
    },
  },
};
// Python 2 names of the same builtins.
for (const n of ['set', 'frozenset', 'bytearray', 'slice', 'complex']) BUILTIN_GLOBALS[`__builtin__.${n}`] = BUILTIN_GLOBALS[`builtins.${n}`];

function encodeLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function iterOf(v: unknown, what: string): unknown[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Set) return [...v];
  if (v instanceof Map) return [...v.keys()];
  throw new UnpicklingError(`${what}: cannot iterate over ${describe(v)}`);
}

function pairsOf(v: unknown, what: string): [unknown, unknown][] {
  if (v instanceof Map) return [...v.entries()];
  return iterOf(v, what).map((p) => {
    if (!Array.isArray(p) || p.length !== 2) throw new UnpicklingError(`${what}: expected (key, value) pairs`);
    return [p[0], p[1]] as [unknown, unknown];
  });
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list/tuple';
  if (v instanceof Map) return 'a dict';
  if (v instanceof PyObject) return `a ${v.cls} object`;
  return typeof v;
}

const MARK = Symbol('mark');

/** Deepest container nesting accepted (state dicts nest a few levels; Python's own limit is about 1000). */
export const MAX_PICKLE_DEPTH = 1000;
/** Longest integer accepted (LONG1/LONG4/INT/LONG text): Python ints in checkpoints are a few bytes. */
export const MAX_LONG_BYTES = 4096;

/** Unpickle `bytes`. Throws UnpicklingError (naming `source`) on refused globals or malformed data. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  return unpickleAt(bytes, 0, opts).value;
}

/** Unpickle one pickle starting at byte `start`; `end` is the offset just after its STOP (files may hold several). */
export function unpickleAt(bytes: Uint8Array, start: number, opts: UnpickleOptions): { value: unknown; end: number } {
  const src = opts.source ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dec = new TextDecoder('utf-8', { fatal: true });
  let pos = start;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  // Nesting depth of the containers built so far (bottom-up; deep structures are refused, not recursed into).
  const depths = new WeakMap<object, number>();
  const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' ? depths.get(v) ?? 1 : 0);
  const nest = <C>(container: C, children: Iterable<unknown>): C => {
    let d = depthOf(container);
    for (const c of children) d = Math.max(d, depthOf(c) + 1);
    if (d > MAX_PICKLE_DEPTH) fail(`containers nested more than ${MAX_PICKLE_DEPTH} levels deep at offset ${pos - 1} (corrupt or hostile pickle)`);
    if (d > 1 && container !== null && typeof container === "object") depths.set(container as object, d);
    return container;
  };
  const long = (n: number) => {
    if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes at offset ${pos} (more than ${MAX_LONG_BYTES}; corrupt or hostile pickle)`);
    return decodeLong(take(n));
  };
  const intText = (s: string) => {
    if (s.length > MAX_LONG_BYTES) fail(`integer literal of ${s.length} digits at offset ${pos - s.length - 1} (more than ${MAX_LONG_BYTES})`);
    return parseIntText(s, fail);
  };

  const fail = (msg: string): never => {
    throw new UnpicklingError(`${src}: ${msg}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(`truncated pickle data (needed ${n} more bytes at offset ${pos} of ${bytes.length})`);
  };
  const u8 = () => { need(1); return bytes[pos++]; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    if (v > BigInt(bytes.length)) fail(`length ${v} at offset ${pos} is beyond the ${bytes.length}-byte pickle (corrupt or hostile file)`);
    pos += 8;
    return Number(v);
  };
  const take = (n: number) => { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated pickle data (unterminated text argument at offset ${pos})`);
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array) => {
    try {
      return dec.decode(b);
    } catch {
      return fail(`invalid UTF-8 string at offset ${pos - b.length}`);
    }
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail(`stack underflow at offset ${pos - 1}`);
    const v = stack.pop();
    return v;
  };
  const top = () => {
    if (stack.length === 0) fail(`stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail(`MARK expected on the stack at offset ${pos - 1}`);
    return stack.splice(m!);
  };
  const resolve = (module: string, name: string): PyCallable => {
    const g = opts.resolveGlobal(module, name);
    if (!g) {
      fail(`refusing to load global ${module}.${name} (not on the allow-list of a checkpoint loader; nothing was executed)`);
    }
    return g!;
  };
  const callOf = (f: unknown, what: string): PyCallable => {
    if (f && typeof f === 'object' && 'call' in f && 'qualname' in f) return f as PyCallable;
    return fail(`${what}: ${describe(f)} is not callable`);
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (d instanceof Map) d.set(k, v);
    else if (d instanceof PyObject) {
      if (!(d.state instanceof Map)) d.state = new Map();
      (d.state as Map<unknown, unknown>).set(k, v);
    } else fail(`SETITEM on ${describe(d)}`);
  };
  const append = (l: unknown, vs: unknown[]) => {
    if (Array.isArray(l) && !Object.isFrozen(l)) l.push(...vs);
    else if (l instanceof PyObject) l.args.push(...vs);
    else fail(`APPEND on ${describe(l)}`);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
        return { value: stack[0], end: pos };
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      // ---- numbers
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x49: { // INT (text)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : intText(s));
        break;
      }
      case 0x4c: stack.push(intText(line().replace(/L$/, ''))); break; // LONG (text)
      case 0x8a: stack.push(long(u8())); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('LONG4 with negative length');
        stack.push(long(n));
        break;
      }
      case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^-?nan$/i.test(s)) fail(`bad FLOAT ${s}`);
        stack.push(v);
        break;
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      // ---- strings and bytes
      case 0x58: stack.push(utf8(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(take(u64()))); break; // BINUNICODE8
      case 0x56: stack.push(unescapeRawUnicode(line())); break; // UNICODE (raw-unicode-escape)
      case 0x54: { const n = i32(); if (n < 0) fail('BINSTRING with negative length'); stack.push(new TextDecoder('latin1').decode(take(n))); break; }
      case 0x55: stack.push(new TextDecoder('latin1').decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x53: stack.push(parseStringRepr(line(), fail)); break; // STRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      // ---- containers
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const vs = popMark(); stack.push(nest(vs, vs)); break; } // LIST
      case 0x61: { const v = pop(); append(nest(top(), [v]), [v]); break; } // APPEND
      case 0x65: { const vs = popMark(); append(nest(top(), vs), vs); break; } // APPENDS
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: { const vs = popMark(); stack.push(Object.freeze(nest(vs, vs))); break; } // TUPLE
      case 0x85: { const a = [pop()]; stack.push(Object.freeze(nest(a, a))); break; } // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(Object.freeze(nest([a, b], [a, b]))); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(Object.freeze(nest([a, b, c], [a, b, c]))); break; } // TUPLE3
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const m = new Map();
        for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
        stack.push(nest(m, items));
        break;
      }
      case 0x73: { const v = pop(), k = pop(); setItem(nest(top(), [k, v]), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = nest(top(), items);
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS on ${describe(s)}`);
        for (const v of items) (s as Set<unknown>).add(v);
        break;
      }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      // ---- memo
      case 0x70: memo.set(memoKey(intText(line()), fail), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memoGet(memo, memoKey(intText(line()), fail), fail)); break; // GET
      case 0x68: stack.push(memoGet(memo, u8(), fail)); break; // BINGET
      case 0x6a: stack.push(memoGet(memo, u32(), fail)); break; // LONG_BINGET
      // ---- objects
      case 0x63: { // GLOBAL
        const module = line(), name = line();
        stack.push(resolve(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), f = pop();
        if (!Array.isArray(args)) fail(`REDUCE with ${describe(args)} as arguments`);
        stack.push(callOf(f, 'REDUCE').call([...(args as unknown[])]));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop(), cls = pop();
        if (!Array.isArray(args)) fail(`NEWOBJ with ${describe(args)} as arguments`);
        stack.push(callOf(cls, 'NEWOBJ').call([...(args as unknown[])]));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(), args = pop(), cls = pop();
        if (!Array.isArray(args)) fail(`NEWOBJ_EX with ${describe(args)} as arguments`);
        stack.push(callOf(cls, 'NEWOBJ_EX').call([...(args as unknown[])], kwargs as Map<unknown, unknown>));
        break;
      }
      case 0x69: { // INST module\nname\n with args from MARK
        const module = line(), name = line();
        const args = popMark();
        stack.push(resolve(module, name).call(args));
        break;
      }
      case 0x6f: { // OBJ: MARK cls args...
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        stack.push(callOf(items[0], 'OBJ').call(items.slice(1)));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        build(obj, state, fail);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id found but no persistent_load is available');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84:
        fail(`refusing extension-registry opcode 0x${op.toString(16)} at offset ${pos - 1}`);
        break;
      case 0x97: case 0x98:
        fail(`out-of-band buffers (opcode 0x${op.toString(16)}) are not supported`);
        break;
      default:
        fail(`unknown or unsupported opcode 0x${op.toString(16)} at offset ${pos - 1} (corrupt pickle?)`);
    }
  }
}

function memoKey(k: number | bigint, fail: (m: string) => never): number {
  if (typeof k !== 'number' || k < 0) fail(`memo key ${k} is not a valid index`);
  return k as number;
}

function memoGet(memo: Map<number, unknown>, k: number, fail: (m: string) => never): unknown {
  if (!memo.has(k)) fail(`memo key ${k} not found (corrupt pickle?)`);
  return memo.get(k);
}

/** BUILD: apply `state` to an object. Only inert objects accept state. */
function build(obj: unknown, state: unknown, fail: (m: string) => never): void {
  if (obj instanceof PyObject) {
    obj.state = state;
    return;
  }
  if (obj && typeof obj === 'object' && typeof (obj as { setState?: unknown }).setState === 'function') {
    (obj as { setState(s: unknown): void }).setState(state);
    return;
  }
  if (obj instanceof Map) {
    // An OrderedDict with instance attributes (state_dict()._metadata): keep them out of the items.
    Object.defineProperty(obj, 'pyState', { value: state, enumerable: false, configurable: true, writable: true });
    return;
  }
  fail(`BUILD on ${describe(obj)}`);
}

/** Two's-complement little-endian integer of any length (LONG1/LONG4). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let hex = '';
  for (let i = b.length - 1; i >= 0; i--) hex += b[i].toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string, fail: (m: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s)) fail(`bad integer literal ${JSON.stringify(s)}`);
  const v = BigInt(s);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function unescapeRawUnicode(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a, b) => String.fromCodePoint(parseInt(a ?? b, 16)));
}

/** STRING takes a Python repr: 'abc' or "abc" with backslash escapes. */
function parseStringRepr(s: string, fail: (m: string) => never): string {
  const q = s[0];
  if (!(q === "'" || q === '"') || s[s.length - 1] !== q || s.length < 2) fail(`bad STRING literal ${s}`);
  const body = s.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[e] ?? `\\${e}`;
  });
}
