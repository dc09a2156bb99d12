import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { convertToSafetensors, readCheckpoint } from '../../src/io/ckpt.js';
import { emaKey, loadCheckpointInto } from '../../src/loader/checkpoint.js';
import { PyObject, unpickle, BUILTIN_GLOBALS, type PyCallable } from '../../src/io/pickle.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { crc32 } from '../../src/io/zip.js';
import { Linear, Module } from '../../src/nn/index.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const golden = path.resolve(repoRoot, '../shared/golden');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ldm-ckpt-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- tiny writers for hand-made files -------------------------------------------------------------

/** A stored (uncompressed) zip archive, like torch.save writes; zip64 puts sizes and offsets in ZIP64 records. */
function zipStored(entries: [string, Uint8Array][], zip64 = false): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const [name, data] of entries) {
    const n = enc.encode(name);
    const pad = 7; // an alignment extra field in the local header only, as PyTorch writes ("FB" padding)
    const h = new Uint8Array(30 + n.length + 4 + pad);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint32(14, crc32(data), true);
    v.setUint32(18, data.length, true);
    v.setUint32(22, data.length, true);
    v.setUint16(26, n.length, true);
    v.setUint16(28, 4 + pad, true);
    h.set(n, 30);
    v.setUint16(30 + n.length, 0x4246, true);
    v.setUint16(32 + n.length, pad, true);
    const x64 = zip64 ? 28 : 0;
    const c = new Uint8Array(46 + n.length + x64);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, zip64 ? 0xffffffff : data.length, true);
    cv.setUint32(24, zip64 ? 0xffffffff : data.length, true);
    cv.setUint16(28, n.length, true);
    cv.setUint16(30, x64, true);
    cv.setUint32(42, zip64 ? 0xffffffff : off, true);
    c.set(n, 46);
    if (zip64) {
      const e = 46 + n.length;
      cv.setUint16(e, 1, true);
      cv.setUint16(e + 2, 24, true);
      cv.setBigUint64(e + 4, BigInt(data.length), true);
      cv.setBigUint64(e + 12, BigInt(data.length), true);
      cv.setBigUint64(e + 20, BigInt(off), true);
    }
    central.push(c);
    parts.push(h, data);
    off += h.length + data.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const tail: Uint8Array[] = [];
  if (zip64) {
    const r = new Uint8Array(56 + 20);
    const rv = new DataView(r.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setBigUint64(24, BigInt(entries.length), true);
    rv.setBigUint64(32, BigInt(entries.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(off), true);
    rv.setUint32(56, 0x07064b50, true);
    rv.setBigUint64(64, BigInt(off + cdSize), true);
    rv.setUint32(72, 1, true);
    tail.push(r);
  }
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : entries.length, true);
  ev.setUint16(10, zip64 ? 0xffff : entries.length, true);
  ev.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, zip64 ? 0xffffffff : off, true);
  return Buffer.concat([...parts, ...central, ...tail, eocd]);
}

/** Protocol-2 pickle assembled from opcodes. */
class Pkl {
  private b: number[] = [0x80, 2];
  op(...bytes: number[]) { this.b.push(...bytes); return this; }
  str(s: string) {
    const u = new TextEncoder().encode(s);
    this.b.push(0x58, u.length & 0xff, (u.length >> 8) & 0xff, 0, 0, ...u);
    return this;
  }
  int(n: number) {
    const v = new DataView(new ArrayBuffer(4));
    v.setInt32(0, n, true);
    this.b.push(0x4a, ...new Uint8Array(v.buffer));
    return this;
  }
  global(mod: string, name: string) {
    this.b.push(0x63, ...new TextEncoder().encode(`${mod}\n${name}\n`));
    return this;
  }
  mark() { return this.op(0x28); }
  tuple() { return this.op(0x74); }
  bytes() { return new Uint8Array([...this.b, 0x2e]); }
}

/** A tensor argument tuple for _rebuild_tensor_v2: (persid(storage), offset, size, stride, False, OrderedDict()). */
function rebuild(p: Pkl, storage: string, key: string, numel: number, offset: number, size: number[], stride: number[]): Pkl {
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', storage).str(key).str('cpu').int(numel).tuple().op(0x51);
  p.int(offset);
  p.mark(); for (const s of size) p.int(s); p.tuple();
  p.mark(); for (const s of stride) p.int(s); p.tuple();
  p.op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).tuple().op(0x52);
  return p;
}

const noRun = () => assert.ok(!existsSync(path.join(tmp, 'pwned')), 'a refused pickle must not run anything');

// ---- the golden checkpoint ----------------------------------------------------------------------------

test('golden model.ckpt: every tensor equals weights.safetensors bit for bit; global_step 1234, epoch 3', (t) => {
  const ck = path.join(golden, 'ldm_ddim_cfg', 'model.ckpt');
  if (!existsSync(ck)) {
    t.skip(`golden fixtures not found at ${golden}`);
    return;
  }
  const c = readCheckpoint(ck);
  const w = readSafetensors(path.join(golden, 'ldm_ddim_cfg', 'weights.safetensors')).tensors;
  try {
    assert.equal(c.format, 'torch-zip');
    assert.equal(c.globalStep, 1234);
    assert.equal(c.epoch, 3);
    assert.equal(c.stateDict.size, w.size);
    assert.equal(c.stateDict.size, 555);
    for (const [k, ref] of w) {
      const lazy = c.stateDict.get(k);
      assert.ok(lazy, `model.ckpt lacks ${k}`);
      const got = lazy.load();
      assert.equal(got.dtype, ref.dtype, k);
      assert.deepEqual(got.shape, ref.shape, k);
      const a = T.contiguousData(got), b = T.contiguousData(ref);
      assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${k} differs`);
    }
    assert.equal(c.stateDict.get('model_ema.num_updates')!.dtype, 'int32');
    assert.ok(Math.abs(c.stateDict.get('model_ema.decay')!.load().item() - 0.9999) < 1e-6);
  } finally {
    c.close();
  }
});

test('ldm convert: ckpt → safetensors keeps keys, dtypes, values and global_step; written atomically', (t) => {
  const ck = path.join(golden, 'ldm_ddim_cfg', 'model.ckpt');
  if (!existsSync(ck)) {
    t.skip(`golden fixtures not found at ${golden}`);
    return;
  }
  const out = path.join(tmp, 'converted.safetensors');
  const r = convertToSafetensors(ck, out);
  assert.equal(r.tensors, 555);
  const conv = readSafetensors(out);
  assert.equal(conv.metadata.global_step, '1234');
  assert.equal(conv.metadata.epoch, '3');
  const w = readSafetensors(path.join(golden, 'ldm_ddim_cfg', 'weights.safetensors')).tensors;
  assert.deepEqual([...conv.tensors.keys()].sort(), [...w.keys()].sort());
  for (const [k, ref] of w) assert.deepEqual(conv.tensors.get(k)!.toArray(), ref.toArray(), k);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), [], 'no temporary file left behind');
  // A failing write (no such folder) leaves nothing behind.
  assert.throws(() => convertToSafetensors(ck, path.join(tmp, 'missing-dir', 'x.safetensors')), (e: Error & { code?: string }) =>
    e.code === 'ENOENT' && e.message === `cannot write ${path.join(tmp, 'missing-dir', 'x.safetensors')}: folder ${path.join(tmp, 'missing-dir')} does not exist`);
  assert.equal(existsSync(path.join(tmp, 'missing-dir')), false);
  // The converted file loads through the same API.
  const again = readCheckpoint(out);
  assert.equal(again.globalStep, 1234);
  again.close();
});

// ---- refusing code ------------------------------------------------------------------------------------

test('a pickle naming os.system is refused by name and nothing runs (zip and bare pickle)', () => {
  const evil = new Pkl().global('os', 'system').mark().str(`touch ${path.join(tmp, 'pwned')}`).tuple().op(0x52).bytes();
  assert.throws(() => unpickle(evil, { resolveGlobal: (m, n) => BUILTIN_GLOBALS[`${m}.${n}`], source: 'evil.pkl' }), /evil\.pkl: refusing to load global os\.system/);
  const file = path.join(tmp, 'evil.ckpt');
  writeFileSync(file, zipStored([['archive/data.pkl', evil], ['archive/version', new TextEncoder().encode('3\n')]]));
  assert.throws(() => readCheckpoint(file), (e: Error) => e.message.includes('refusing to load global os.system') && e.message.includes(file));
  // Even an explicit allowance cannot let it through.
  assert.throws(() => readCheckpoint(file, { allowGlobals: ['os.system'] }), /refusing to load global os\.system/);
  noRun();
  // STACK_GLOBAL (protocol 4 style) and builtins.eval / posix.system / subprocess.
  for (const [mod, name] of [['builtins', 'eval'], ['posix', 'system'], ['subprocess', 'Popen'], ['builtins', 'getattr']]) {
    const p = new Pkl().str(mod).str(name).op(0x93).mark().str('1').tuple().op(0x52).bytes();
    writeFileSync(file, zipStored([['archive/data.pkl', p]]));
    assert.throws(() => readCheckpoint(file), new RegExp(`refusing to load global ${mod}\\.${name}`));
  }
  noRun();
  // An unknown (harmless-looking) class is refused too, unless allowed; then it is only recorded.
  const inert = new Pkl().op(0x7d).str('hp').global('mylib.config', 'Settings').mark().int(7).tuple().op(0x52).op(0x73)
    .str('state_dict').global('collections', 'OrderedDict').op(0x29, 0x52).op(0x73).bytes();
  writeFileSync(file, zipStored([['archive/data.pkl', inert]]));
  assert.throws(() => readCheckpoint(file), /refusing to load global mylib\.config\.Settings.*allowGlobals/);
  const ok = readCheckpoint(file, { allowGlobals: ['mylib.config.Settings'] });
  const hp = (ok.top as Map<string, unknown>).get('hp') as PyObject;
  assert.ok(hp instanceof PyObject);
  assert.equal(hp.cls, 'mylib.config.Settings');
  assert.deepEqual(hp.args, [7]);
  assert.equal(ok.stateDict.size, 0);
  ok.close();
});

test('pickle opcodes: containers, memo, longs, floats, strings, bytes via _codecs, BUILD on OrderedDict', () => {
  const p = new Pkl()
    .op(0x7d, 0x71, 0) // EMPTY_DICT, BINPUT 0
    .mark()
    .str('list').op(0x5d).mark().int(-5).op(0x4b, 200).op(0x4d, 0x34, 0x12).op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xff).op(0x65)
    .str('float').op(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18)
    .str('tuple').op(0x88, 0x89, 0x4e, 0x87)
    .str('bytes').global('_codecs', 'encode').mark().str('\u00ff\u0001').str('latin1').tuple().op(0x52)
    .str('memo').op(0x68, 0)
    .str('od').global('collections', 'OrderedDict').op(0x29, 0x52).op(0x7d).str('_metadata').op(0x4e).op(0x73).op(0x62)
    .op(0x75);
  const v = unpickle(p.bytes(), { resolveGlobal: (m, n) => BUILTIN_GLOBALS[`${m}.${n}`] }) as Map<string, unknown>;
  assert.deepEqual(v.get('list'), [-5, 200, 0x1234, -(2n ** 63n)]);
  assert.equal(v.get('float'), Math.PI);
  assert.deepEqual(v.get('tuple'), [true, false, null]);
  assert.deepEqual([...(v.get('bytes') as Uint8Array)], [255, 1]);
  assert.equal(v.get('memo'), v, 'BINGET returns the memoised object itself');
  assert.ok(v.get('od') instanceof Map);
  assert.throws(() => unpickle(new Uint8Array([0x80, 2, 0x7d, 0x4a, 1]), { resolveGlobal: () => undefined, source: 'short.pkl' }), /short\.pkl: truncated pickle data/);
  assert.throws(() => unpickle(new Uint8Array([0x80, 2, 0xff]), { resolveGlobal: () => undefined, source: 'bad.pkl' }), /bad\.pkl: unknown or unsupported opcode 0xff/);
});

test('hand-made torch zip: strided views, shared storage, half storage, big-endian byteorder, ZIP64, Lightning extras', () => {
  // storage 0: float32 0..5; "a" = [2, 3] contiguous; "b" = its transpose view [3, 2] strides [1, 3] offset 0;
  // "c" = [2] from offset 4; storage 1: float16 [1.5, -2]; storage 2: int64 [7, 8, 9].
  const f32 = new Float32Array([0, 1, 2, 3, 4, 5]);
  const f16 = new Uint8Array([0x00, 0x3e, 0x00, 0xc0]);
  const i64 = new BigInt64Array([7n, 8n, 9n]);
  const build = (bigEndian: boolean) => {
    const p = new Pkl().op(0x7d).mark();
    p.str('state_dict').global('collections', 'OrderedDict').op(0x29, 0x52).mark();
    p.str('a'); rebuild(p, 'FloatStorage', '0', 6, 0, [2, 3], [3, 1]);
    p.str('b'); rebuild(p, 'FloatStorage', '0', 6, 0, [3, 2], [1, 3]);
    p.str('c'); rebuild(p, 'FloatStorage', '0', 6, 4, [2], [1]);
    p.str('h'); p.global('torch._utils', '_rebuild_parameter').mark(); rebuild(p, 'HalfStorage', '1', 2, 0, [2], [1]).op(0x88).global('collections', 'OrderedDict').op(0x29, 0x52).tuple().op(0x52);
    p.str('n'); rebuild(p, 'LongStorage', '2', 3, 0, [3], [1]);
    p.op(0x75);
    p.str('global_step').int(77);
    p.str('callbacks').op(0x7d).global('pytorch_lightning.callbacks.model_checkpoint', 'ModelCheckpoint').op(0x7d).op(0x73);
    p.op(0x75);
    const swap = (b: Uint8Array, w: number) => { const c = b.slice(); for (let i = 0; i < c.length; i += w) c.subarray(i, i + w).reverse(); return c; };
    const raw = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const files: [string, Uint8Array][] = [
      ['m/data.pkl', p.bytes()],
      ['m/data/0', bigEndian ? swap(raw(f32), 4) : raw(f32)],
      ['m/data/1', bigEndian ? swap(f16, 2) : f16],
      ['m/data/2', bigEndian ? swap(raw(i64), 8) : raw(i64)],
      ['m/version', new TextEncoder().encode('3\n')],
    ];
    if (bigEndian) files.push(['m/byteorder', new TextEncoder().encode('big')]);
    return zipStored(files, bigEndian); // the big-endian variant also exercises ZIP64 records
  };
  for (const be of [false, true]) {
    const file = path.join(tmp, `hand-${be}.ckpt`);
    writeFileSync(file, build(be));
    const c = readCheckpoint(file);
    assert.equal(c.globalStep, 77);
    assert.deepEqual(c.stateDict.get('a')!.load().toArray(), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(c.stateDict.get('b')!.load().toArray(), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(c.stateDict.get('c')!.load().toArray(), [4, 5]);
    assert.equal(c.stateDict.get('h')!.fileDtype, 'F16');
    assert.deepEqual(c.stateDict.get('h')!.load().toArray(), [1.5, -2]);
    assert.equal(c.stateDict.get('n')!.dtype, 'int64');
    assert.deepEqual(c.stateDict.get('n')!.load().toArray(), [7, 8, 9]);
    const cb = (c.top as Map<string, Map<unknown, unknown>>).get('callbacks')!;
    // Old Lightning versions key callback states by the callback class itself: kept as an inert reference.
    assert.equal(([...cb.keys()][0] as PyCallable).qualname, 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint');
    c.close();
  }
});

test('legacy (pre-1.6) torch.save stream: magic, protocol, sys_info, object, keys, then raw storages; views', () => {
  const cat = (...ps: Uint8Array[]) => new Uint8Array(Buffer.concat(ps));
  const magic = new Pkl().op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).bytes();
  const proto = new Pkl().op(0x4d, 0xe9, 0x03).bytes();
  const sys = new Pkl().op(0x7d).str('little_endian').op(0x88).op(0x73).bytes();
  const obj = new Pkl().global('collections', 'OrderedDict').op(0x29, 0x52).mark();
  // "features.0.weight": [2, 2] over root storage "140" (6 floats); "features.0.bias": a view (offset 4, size 2).
  obj.str('features.0.weight').global('torch._utils', '_rebuild_tensor_v2').mark();
  obj.mark().str('storage').global('torch', 'FloatStorage').str('140').str('cpu').int(6).op(0x4e).tuple().op(0x51);
  obj.int(0).mark().int(2).int(2).tuple().mark().int(2).int(1).tuple().op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).tuple().op(0x52);
  obj.str('features.0.bias').global('torch._utils', '_rebuild_tensor_v2').mark();
  obj.mark().str('storage').global('torch', 'FloatStorage').str('140').str('cpu').int(6).mark().str('141').int(4).int(2).tuple().tuple().op(0x51);
  obj.int(0).mark().int(2).tuple().mark().int(1).tuple().op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).tuple().op(0x52);
  obj.op(0x75);
  const keys = new Pkl().op(0x5d).str('140').op(0x61).bytes();
  const count = new Uint8Array(8);
  new DataView(count.buffer).setBigInt64(0, 6n, true);
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const file = path.join(tmp, 'legacy.pth');
  writeFileSync(file, cat(magic, proto, sys, obj.bytes(), keys, count, data));
  const c = readCheckpoint(file);
  assert.equal(c.format, 'torch-legacy');
  assert.deepEqual(c.stateDict.get('features.0.weight')!.load().toArray(), [1, 2, 3, 4]);
  assert.deepEqual(c.stateDict.get('features.0.bias')!.load().toArray(), [5, 6]);
  c.close();
  // Truncated storage data is reported with the file name.
  writeFileSync(file, cat(magic, proto, sys, obj.bytes(), keys, count, data.subarray(0, 10)));
  assert.throws(() => readCheckpoint(file), (e: Error) => e.message.startsWith(file) && /truncated/.test(e.message));
  // A refused global in a legacy file is refused the same way.
  writeFileSync(file, cat(magic, proto, sys, new Pkl().global('os', 'system').mark().str('true').tuple().op(0x52).bytes(), keys));
  assert.throws(() => readCheckpoint(file), /refusing to load global os\.system/);
  noRun();
});

// ---- damaged files --------------------------------------------------------------------------------

test('truncated, corrupt, empty and foreign files give clear errors naming the file', (t) => {
  const ck = path.join(golden, 'ldm_ddim_cfg', 'model.ckpt');
  const empty = path.join(tmp, 'empty.ckpt');
  writeFileSync(empty, new Uint8Array(0));
  assert.throws(() => readCheckpoint(empty), (e: Error) => e.message.startsWith(empty) && /empty/.test(e.message));
  const text = path.join(tmp, 'notes.ckpt');
  writeFileSync(text, 'hello, this is not a checkpoint');
  assert.throws(() => readCheckpoint(text), (e: Error) => e.message.startsWith(text) && /not a checkpoint/.test(e.message));
  const st = path.join(tmp, 'trunc.safetensors');
  const good = path.join(tmp, 'good.safetensors');
  writeSafetensors(good, { w: T.ones([64, 64]) });
  writeFileSync(st, readFileSync(good).subarray(0, 2000));
  assert.throws(() => readCheckpoint(st), (e: Error) => e.message.startsWith(st) && /truncated/.test(e.message));
  if (!existsSync(ck)) {
    t.skip(`golden fixtures not found at ${golden}`);
    return;
  }
  const bytes = readFileSync(ck);
  const half = path.join(tmp, 'half.ckpt');
  writeFileSync(half, bytes.subarray(0, bytes.length >> 1));
  assert.throws(() => readCheckpoint(half), (e: Error) => e.message.startsWith(half) && /truncated|not a zip/.test(e.message));
  // Cut off the end of the storage area but keep the directory: reading a tensor past the end fails by name.
  const corrupt = path.join(tmp, 'corrupt.ckpt');
  const bad = Buffer.from(bytes);
  bad[200] ^= 0xff; // inside data.pkl
  writeFileSync(corrupt, bad);
  assert.throws(() => readCheckpoint(corrupt), (e: Error) => e.message.startsWith(corrupt) && /CRC-32 mismatch in entry model\/data\.pkl/.test(e.message));
});

// ---- loading into modules: EMA, ignorable keys, report --------------------------------------------

class Tiny extends Module {
  model = new (class extends Module {
    lin = new Linear(3, 2);
  })();
  first_stage_model = new (class extends Module {
    conv = new Linear(2, 2, false);
  })();
}

test('loadCheckpointInto: live or EMA weights, ignorable keys, missing/unexpected/mismatched report', () => {
  const file = path.join(tmp, 'ema.safetensors');
  const live = T.full([2, 3], 1), ema = T.full([2, 3], 2);
  assert.equal(emaKey('model.lin.weight'), 'model_ema.linweight');
  writeSafetensors(file, {
    'model.lin.weight': live, 'model.lin.bias': T.full([2], 3), 'first_stage_model.conv.weight': T.full([2, 2], 4),
    'model_ema.linweight': ema, 'model_ema.linbias': T.full([2], 5), 'model_ema.decay': T.full([], 0.9999), 'model_ema.num_updates': T.zeros([], 'int32'),
    'ddim_sigmas': T.zeros([10]), 'first_stage_model.loss.logvar': T.zeros([]),
  });
  const m = new Tiny();
  const r = loadCheckpointInto(m, file);
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.unexpected, []);
  assert.ok(r.ignored.includes('ddim_sigmas') && r.ignored.includes('first_stage_model.loss.logvar') && r.ignored.includes('model_ema.decay'));
  assert.deepEqual(m.model.lin.weight.toArray(), Array(6).fill(1));
  const m2 = new Tiny();
  const r2 = loadCheckpointInto(m2, file, { ema: true });
  assert.equal(r2.usedEma, true);
  assert.deepEqual(m2.model.lin.weight.toArray(), Array(6).fill(2));
  assert.deepEqual(m2.model.lin.bias!.toArray(), [5, 5]);
  assert.deepEqual(m2.first_stage_model.conv.weight.toArray(), [4, 4, 4, 4], 'parameters outside the EMA scope keep their live values');
  assert.ok(r2.ignored.includes('model.lin.weight'), 'the unused live copy is reported as ignored');
  // Unexpected and mis-shaped keys are listed by name; strict throws naming the file.
  writeSafetensors(file, { 'model.lin.weight': T.zeros([3, 3]), 'model.other': T.zeros([1]) });
  assert.throws(() => loadCheckpointInto(new Tiny(), file), (e: Error) =>
    e.message.includes(file) && e.message.includes('model.other') && e.message.includes('model.lin.bias') && /shape mismatch at model\.lin\.weight: model has \[2,3\], file has \[3,3\]/.test(e.message));
  const r3 = loadCheckpointInto(new Tiny(), file, { strict: false });
  assert.deepEqual(r3.unexpected, ['model.other']);
  assert.deepEqual(r3.missing.sort(), ['first_stage_model.conv.weight', 'model.lin.bias']);
  assert.equal(r3.mismatched[0].key, 'model.lin.weight');
  assert.throws(() => loadCheckpointInto(new Tiny(), file, { ema: true }), /EMA weights requested but the file has no model_ema/);
});
