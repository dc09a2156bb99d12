// .ckpt mutators: zip structure, pickle opcodes, tensor arguments, forbidden globals (with a canary).

import { ZipReader } from '../../src/io/zip.js';
import { concat, enc, generic, INTERESTING, type Rng } from './rng.js';
import { emit, pickle, rebuild, storageRef, torchZip, writeZip, type PV, type ZipIn } from './zip-pickle.js';

export interface Mutated {
  bytes: Uint8Array;
  how: string;
}

/** Entries of a seed zip (seeds are valid files). */
export function unzip(path: string): ZipIn[] {
  const z = new ZipReader(path);
  try {
    return [...z.entries.keys()].map((name) => ({ name, data: z.read(name) }));
  } finally {
    z.close();
  }
}

const FORBIDDEN: [string, string][] = [
  ['posix', 'system'], ['os', 'system'], ['nt', 'system'], ['subprocess', 'Popen'], ['subprocess', 'check_output'],
  ['builtins', 'eval'], ['builtins', 'exec'], ['builtins', 'getattr'], ['builtins', '__import__'], ['__builtin__', 'eval'],
  ['builtins', 'open'], ['shutil', 'rmtree'], ['runpy', '_run_code'], ['pickle', 'loads'], ['functools', 'partial'],
  ['operator', 'attrgetter'], ['torch', 'load'], ['numpy', 'load'], ['webbrowser', 'open'], ['builtins', 'compile'],
];

/** The argument that would create the canary if anything ran it. */
function payload(g: [string, string], canary: string): string {
  if (/eval|exec|compile|_run_code/.test(g[1])) return `__import__('os').system('touch ${canary}')`;
  return `touch ${canary}`;
}

/** A pickle calling a forbidden global through one of the call opcodes. */
export function forbiddenPickle(r: Rng, canary: string): { pkl: Uint8Array; how: string } {
  const g = r.pick(FORBIDDEN);
  const arg = emit(payload(g, canary));
  const glob = concat(Uint8Array.of(0x63), enc(`${g[0]}\n${g[1]}\n`));
  const stackGlobal = concat(emit(g[0]), emit(g[1]), Uint8Array.of(0x93));
  const via = r.pick(['REDUCE', 'STACK_GLOBAL+REDUCE', 'INST', 'OBJ', 'NEWOBJ', 'NEWOBJ_EX', 'BUILD', 'in-state-dict', 'rebuild_from_type']);
  let body: Uint8Array;
  switch (via) {
    case 'REDUCE': body = concat(glob, Uint8Array.of(0x28), arg, Uint8Array.of(0x74, 0x52)); break;
    case 'STACK_GLOBAL+REDUCE': body = concat(stackGlobal, arg, Uint8Array.of(0x85, 0x52)); break;
    case 'INST': body = concat(Uint8Array.of(0x28), arg, Uint8Array.of(0x69), enc(`${g[0]}\n${g[1]}\n`)); break;
    case 'OBJ': body = concat(Uint8Array.of(0x28), glob, arg, Uint8Array.of(0x6f)); break;
    case 'NEWOBJ': body = concat(glob, arg, Uint8Array.of(0x85, 0x81)); break;
    case 'NEWOBJ_EX': body = concat(glob, arg, Uint8Array.of(0x85, 0x7d, 0x92)); break;
    // an allowed object whose state names the callable (BUILD must never call __setstate__ of anything)
    case 'BUILD': body = concat(emit({ global: ['collections', 'OrderedDict'], args: [] }), glob, arg, Uint8Array.of(0x85, 0x52, 0x62)); break;
    case 'rebuild_from_type': body = emit({ global: ['torch._tensor', '_rebuild_from_type_v2'], args: [{ raw: glob }, null, [payload(g, canary)], null] }); break;
    default: body = concat(Uint8Array.of(0x7d, 0x28), emit('state_dict'), Uint8Array.of(0x7d, 0x28), emit('w'), glob, arg, Uint8Array.of(0x85, 0x52, 0x75, 0x75));
  }
  return { pkl: concat(Uint8Array.of(0x80, 2), body, Uint8Array.of(0x2e)), how: `global ${g.join('.')} via ${via}` };
}

/** Pickles that are structurally hostile: deep nesting, huge LONG4, memo abuse, bad lengths. */
function hostilePickle(r: Rng): { pkl: Uint8Array; how: string } {
  const k = r.int(7);
  if (k === 0) { // deep list nesting
    const n = r.pick([1000, 100000, 300000]);
    return { pkl: concat(Uint8Array.of(0x80, 2), new Uint8Array(n).fill(0x5d), new Uint8Array(n - 1).fill(0x61), Uint8Array.of(0x2e)), how: `nested lists ${n}` };
  }
  if (k === 1) { // deep MARK nesting
    const n = r.pick([1000, 100000]);
    return { pkl: concat(Uint8Array.of(0x80, 2), new Uint8Array(n).fill(0x28), new Uint8Array(n).fill(0x6c), Uint8Array.of(0x2e)), how: `nested MARK lists ${n}` };
  }
  if (k === 2) { // a huge LONG4
    const n = r.pick([1 << 16, 1 << 20, 4 << 20]);
    const b = new Uint8Array(5 + n);
    b[0] = 0x8b;
    new DataView(b.buffer).setInt32(1, n, true);
    b.fill(0x5a, 5);
    return { pkl: concat(Uint8Array.of(0x80, 2), b, Uint8Array.of(0x2e)), how: `LONG4 of ${n} bytes` };
  }
  if (k === 3) { // LONG4 / BINUNICODE declaring more than there is
    const op = r.pick([0x8b, 0x58, 0x42, 0x54]);
    const b = new Uint8Array(5); b[0] = op; new DataView(b.buffer).setUint32(1, r.pick(INTERESTING) >>> 0, true);
    return { pkl: concat(Uint8Array.of(0x80, 2), b, Uint8Array.of(0x2e)), how: `opcode 0x${op.toString(16)} with length beyond the data` };
  }
  if (k === 4) { // memo: huge keys and many puts
    const n = r.pick([10, 100000]);
    const parts: Uint8Array[] = [Uint8Array.of(0x80, 2, 0x4e)];
    for (let i = 0; i < n; i++) parts.push(Uint8Array.of(0x72, 0xff, 0xff, 0xff, i & 0xff));
    parts.push(Uint8Array.of(0x6a, 0xff, 0xff, 0xff, 0x7f, 0x2e));
    return { pkl: concat(...parts), how: `memo with ${n} LONG_BINPUT and a missing key` };
  }
  if (k === 5) { // a persistent id that is itself deeply nested
    const n = 50000;
    return { pkl: concat(Uint8Array.of(0x80, 2), new Uint8Array(n).fill(0x5d), new Uint8Array(n - 1).fill(0x61), Uint8Array.of(0x51, 0x2e)), how: 'deeply nested persistent id' };
  }
  // dict keys that are objects / a top-level that is a list
  return { pkl: pickle({ dict: [[[1, 2], { global: ['collections', 'OrderedDict'], args: [] }], ['state_dict', [1, 2, 3]]] }), how: 'odd dict keys and a non-dict state_dict' };
}

/** A hand-made checkpoint whose tensor arguments are hostile. */
function hostileTensor(r: Rng): Mutated {
  const f32 = new Uint8Array(16 * 4);
  const cases: [string, PV, PV, PV, PV][] = [
    ['zero-stride [20000, 20000]', storageRef('FloatStorage', '0', 16), 0, [20000, 20000], [0, 0]],
    ['size (a, b)', storageRef('FloatStorage', '0', 16), 0, ['a', 'b'], [1, 1]],
    ['negative size', storageRef('FloatStorage', '0', 16), 0, [-4, 4], [4, 1]],
    ['huge size', storageRef('FloatStorage', '0', 16), 0, [2 ** 40, 2 ** 40], [2 ** 40, 1]],
    ['float size', storageRef('FloatStorage', '0', 16), 0, [2.5, 4], [4, 1]],
    ['bigint size', storageRef('FloatStorage', '0', 16), 0, [2n ** 70n], [1]],
    ['negative offset', storageRef('FloatStorage', '0', 16), -8, [4], [1]],
    ['offset beyond', storageRef('FloatStorage', '0', 16), 2 ** 50, [4], [1]],
    ['negative stride', storageRef('FloatStorage', '0', 16), 15, [4, 4], [-4, -1]],
    ['stride/size length mismatch', storageRef('FloatStorage', '0', 16), 0, [4, 4], [1]],
    ['numel beyond the entry', storageRef('FloatStorage', '0', 2 ** 40), 0, [2 ** 20, 2 ** 20], [2 ** 20, 1]],
    ['negative numel', storageRef('FloatStorage', '0', -1), 0, [4], [1]],
    ['string numel', storageRef('FloatStorage', '0', 'x'), 0, [4], [1]],
    ['offset as string', storageRef('FloatStorage', '0', 16), '0', [4], [1]],
    ['many dims', storageRef('FloatStorage', '0', 16), 0, new Array(200).fill(1), new Array(200).fill(1)],
    ['missing entry', storageRef('FloatStorage', '9', 16), 0, [4], [1]],
    ['unknown storage type', storageRef('QuantizedStorage', '0', 16), 0, [4], [1]],
  ];
  const [how, st, off, size, stride] = r.pick(cases);
  return { bytes: torchZip([['w', rebuild(st, off, size, stride)]], [['0', f32]]), how: `tensor: ${how}` };
}

/** Zip-structure attacks on a seed's entries. */
function hostileZip(entries: ZipIn[], r: Rng): Mutated {
  const es = entries.map((e) => ({ ...e }));
  const i = r.int(es.length);
  const e = es[i];
  const k = r.int(8);
  let how: string;
  switch (k) {
    case 0: e.size = r.pick([0xffffffff, 0x7fffffff, 2 ** 31 + 5]); e.csize = e.size; how = `declared size ${e.size} for ${e.name}`; break;
    case 1: e.zip64 = { size: r.pick([2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 1n << 40n]), csize: BigInt(e.data.length) }; how = `ZIP64 size ${e.zip64.size} for ${e.name}`; break;
    case 2: e.zip64 = { offset: r.pick([2n ** 53n, 2n ** 60n, 1n << 40n]) }; how = `ZIP64 offset ${e.zip64.offset} for ${e.name}`; break;
    case 3: e.extra = Uint8Array.of(1, 0, 0xff, 0xff, 1, 2, 3); e.extraLen = r.pick([7, 2000, 65535]); how = `overlong extra field in ${e.name}`; break;
    case 4: e.deflate = true; how = `deflated ${e.name}`; break;
    case 5: { // inflation bomb in data.pkl
      const pk = es.find((x) => x.name.endsWith('data.pkl'))!;
      const n = r.pick([64 << 20, 300 << 20]);
      pk.data = concat(pk.data, new Uint8Array(n));
      pk.deflate = true;
      if (r.chance(0.5)) pk.size = 1000;
      how = `data.pkl deflating to ${n} bytes`;
      break;
    }
    case 6: { // a bit flip in a stored storage with its CRC left as it was
      const st = es.filter((x) => /\/data\/\d+$/.test(x.name));
      const s = st.length ? r.pick(st) : e;
      s.crc = crcOf(s.data);
      s.data = s.data.slice();
      s.data[r.int(s.data.length)] ^= 1 << r.int(8);
      how = `bit flip in ${s.name}, CRC unchanged`;
      break;
    }
    default: e.crc = (r.int(2 ** 32)) >>> 0; how = `wrong CRC for ${e.name}`;
  }
  return { bytes: writeZip(es), how };
}

import { crc32 as crcOf } from '../../src/io/zip.js';

/** Pickle-level mutation of a seed's data.pkl (CRCs recomputed so the pickle is what gets tested). */
function mutatePickle(entries: ZipIn[], r: Rng): Mutated {
  const es = entries.map((e) => ({ ...e }));
  const pk = es.find((x) => x.name.endsWith('data.pkl'))!;
  const d = pk.data.slice();
  const k = r.int(4);
  let how: string;
  if (k === 0) {
    // replace a random opcode-looking byte by another opcode
    const ops = [0x28, 0x29, 0x2e, 0x30, 0x31, 0x32, 0x4a, 0x4b, 0x4d, 0x4e, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x63, 0x65, 0x68, 0x6a, 0x71, 0x72, 0x73, 0x74, 0x75, 0x7d, 0x81, 0x85, 0x86, 0x87, 0x88, 0x8a, 0x8b, 0x8c, 0x93, 0x94, 0x95];
    const p = r.int(d.length);
    d[p] = r.pick(ops);
    how = `opcode at ${p} → 0x${d[p].toString(16)}`;
    pk.data = d;
  } else if (k === 1) {
    // rewrite a small integer argument (shapes, strides, offsets, numels) to an interesting value
    const p = findInts(d, r);
    if (p >= 0) {
      const v = r.pick(INTERESTING);
      if (d[p] === 0x4b) d[p + 1] = v & 0xff;
      else new DataView(d.buffer).setInt32(p + 1, v | 0, true);
      how = `int at ${p} → ${v}`;
    } else how = 'no int found';
    pk.data = d;
  } else {
    pk.data = generic(d, r);
    how = 'generic pickle bytes';
  }
  return { bytes: writeZip(es), how };
}

function findInts(d: Uint8Array, r: Rng): number {
  const hits: number[] = [];
  for (let i = 0; i < d.length - 5; i++) if (d[i] === 0x4b || d[i] === 0x4a) hits.push(i);
  return hits.length ? r.pick(hits) : -1;
}

export function mutateCkpt(seed: { path: string; bytes: Uint8Array }, r: Rng, canary: string): Mutated {
  const isZip = seed.bytes[0] === 0x50;
  const roll = r.next();
  if (!isZip || roll < 0.3) return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
  const entries = unzip(seed.path);
  if (roll < 0.45) return mutatePickle(entries, r);
  if (roll < 0.6) return hostileZip(entries, r);
  if (roll < 0.75) return hostileTensor(r);
  const { pkl, how } = roll < 0.9 ? forbiddenPickle(r, canary) : hostilePickle(r);
  const es = entries.map((e) => (e.name.endsWith('data.pkl') ? { ...e, data: pkl } : e));
  return { bytes: writeZip(es), how };
}
