import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { parseSafetensors, readSafetensors, SafetensorsError, serializeSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { readCheckpoint } from '../../src/io/ckpt.js';

const golden = path.resolve(import.meta.dirname, '../..', '../shared/golden');

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'st-test-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A safetensors file from a header object and raw data bytes. */
function rawFile(header: unknown, data = new Uint8Array(0), headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

test('round trip: float32, float64, int32, int64 (incl. large int64), a non-contiguous view, a scalar, metadata', () => {
  withTmp((dir) => {
    const base = T.arange(24).reshape([2, 3, 4]);
    const view = T.slice(T.permute(base, [2, 0, 1]), 0, 1, 4, 2); // [2, 2, 3], strided, offset 1
    assert.equal(view.isContiguous(), false);
    const big = T.tensor(new BigInt64Array([-(2n ** 62n), 0n, 9007199254740993n]), [3]);
    const tensors = new Map<string, T.Tensor>([
      ['f32', T.tensor([[1.5, -2.25], [3e-8, 1e30]])],
      ['f64', T.tensor([Math.PI, -1e-300, 1 / 3], [3], 'float64')],
      ['i32', T.tensor([-2147483648, 0, 2147483647], [3], 'int32')],
      ['i64', big],
      ['view', view],
      ['scalar', T.full([], 7, 'int64')],
      ['a.b.0.c', T.zeros([0, 5])],
    ]);
    const file = path.join(dir, 'm.safetensors');
    writeSafetensors(file, tensors, { format: 'pt', step: '12' });
    assert.deepEqual(readdirSync(dir), ['m.safetensors']); // no temporary left behind
    const back = readSafetensors(file);
    assert.deepEqual(back.metadata, { format: 'pt', step: '12' });
    assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
    for (const [k, t] of tensors) {
      const r = back.tensors.get(k)!;
      assert.equal(r.dtype, t.dtype, `${k} dtype`);
      assert.deepEqual(r.shape, t.shape, `${k} shape`);
      assert.ok(r.isContiguous());
      assert.deepEqual(r.toArray(), t.toArray(), `${k} values`);
    }
    assert.deepEqual(back.tensors.get('view')!.toArray(), [1, 5, 9, 13, 17, 21, 3, 7, 11, 15, 19, 23]);
    // int64 is exact beyond 2^53 (BigInt64Array storage).
    assert.deepEqual([...(back.tensors.get('i64')!.data as BigInt64Array)], [-(2n ** 62n), 0n, 9007199254740993n]);
    assert.equal(back.tensors.get('f64')!.toArray()[1], -1e-300);
    assert.equal(back.tensors.get('f32')!.toArray()[3], Math.fround(1e30));

    // The layout follows the format: u64 header size, 8-byte aligned data section.
    const bytes = readFileSync(file);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    assert.deepEqual(header.i64, { dtype: 'I64', shape: [3], data_offsets: header.i64.data_offsets });
    assert.equal(header.i64.data_offsets[1] - header.i64.data_offsets[0], 24);
    assert.equal(header.view.dtype, 'F32');
  });
});

test('F16 and BF16 are decoded to float32 (normal, subnormal, inf, negative zero)', () => {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0x8000, 0x3555]);
  const bf16 = new Uint16Array([0x3f80, 0xc0a0, 0x7f80]);
  const data = new Uint8Array(18);
  data.set(new Uint8Array(f16.buffer), 0);
  data.set(new Uint8Array(bf16.buffer), 12);
  const f = parseSafetensors(rawFile({ h: { dtype: 'F16', shape: [6], data_offsets: [0, 12] }, b: { dtype: 'BF16', shape: [3], data_offsets: [12, 18] } }, data));
  const h = f.tensors.get('h')!.toArray();
  assert.deepEqual(h.slice(0, 2), [1, -2]);
  assert.equal(h[2], 2 ** -24);
  assert.equal(h[3], Infinity);
  assert.ok(Object.is(h[4], -0));
  assert.ok(Math.abs(h[5] - 1 / 3) < 1e-3);
  assert.deepEqual(f.tensors.get('b')!.toArray(), [1, -5, Infinity]);
  assert.equal(f.tensors.get('b')!.dtype, 'float32');
});

test('parse errors name the file and what is wrong', () => {
  withTmp((dir) => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['short.safetensors', new Uint8Array(5), /short\.safetensors: file too short \(5 bytes\)/],
      ['hlen.safetensors', (() => { const b = rawFile({}); new DataView(b.buffer).setBigUint64(0, 999n, true); return b; })(), /hlen\.safetensors: header length 999 \(bytes 0–7\) exceeds the file size 10/],
      ['json.safetensors', rawFile(null, new Uint8Array(0), '{"a": [1,'), /json\.safetensors: header \(bytes 8–17\) is not valid JSON/],
      ['dtype.safetensors', rawFile({ w: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype\.safetensors: tensor "w" has unsupported dtype "C64"/],
      ['offsets.safetensors', rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), /offsets\.safetensors: tensor "w" \(F32 \[2,2\]\) needs 16 bytes but data_offsets \[0, 12\] hold 12/],
      ['trunc.safetensors', rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)), /trunc\.safetensors: tensor "w" has data_offsets \[0, 16\] outside the data section \(8 bytes; truncated\?\)/],
      ['nullshape.safetensors', rawFile({ w: { dtype: 'F32', shape: null, data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w" has an invalid shape null/],
      ['nulloff.safetensors', rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: null } }, new Uint8Array(4)), /tensor "w" has invalid data_offsets null/],
      ['negoff.safetensors', rawFile({ w: { dtype: 'U8', shape: [4], data_offsets: [-4, 0] } }, new Uint8Array(4)), /tensor "w" has invalid data_offsets \[-4,0\]/],
      ['negshape.safetensors', rawFile({ w: { dtype: 'U8', shape: [-2, -2], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w" has an invalid shape \[-2,-2\]/],
      ['overlap.safetensors', rawFile({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [2], data_offsets: [2, 4] } }, new Uint8Array(4)), /tensors "a" and "b" overlap/],
      ['meta.safetensors', rawFile({ __metadata__: { step: 3 } }, new Uint8Array(0)), /__metadata__\.step is not a string/],
      ['array.safetensors', rawFile(null, new Uint8Array(0), '[1, 2]'), /header is not a JSON object/],
    ];
    for (const [name, bytes, re] of cases) {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      // the eager reader and the lazy checkpoint reader refuse alike
      for (const read of bytes[8] === 0x7b ? [() => readSafetensors(file), () => readCheckpoint(file)] : [() => readSafetensors(file)]) {
        assert.throws(read, (e: Error) => {
          assert.ok(e instanceof SafetensorsError, `typed error: ${e.constructor.name}`);
          assert.ok(e.message.includes(file), `message names ${file}: ${e.message}`);
          assert.match(e.message, re);
          return true;
        });
      }
    }
  });
});

test('serialize is deterministic and in insertion order', () => {
  const a = serializeSafetensors({ x: T.ones([2]), y: T.zeros([1], 'int32') });
  const b = serializeSafetensors(new Map([['x', T.ones([2])], ['y', T.zeros([1], 'int32')]]));
  assert.deepEqual(a, b);
  const back = parseSafetensors(a);
  assert.deepEqual([...back.tensors.keys()], ['x', 'y']);
});

test('golden fixtures: every weights.safetensors and io.safetensors parses, with known shapes', (t) => {
  if (!existsSync(golden)) {
    t.skip(`golden fixtures not found at ${golden} (../shared/golden relative to the repo root)`);
    return;
  }
  let files = 0, tensors = 0;
  for (const dir of readdirSync(golden, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const name of ['weights.safetensors', 'io.safetensors']) {
      const file = path.join(golden, dir.name, name);
      if (!existsSync(file)) continue;
      const f = readSafetensors(file);
      files++;
      for (const [k, x] of f.tensors) {
        tensors++;
        assert.equal(x.data.length, x.size, `${file}: ${k} holds ${x.data.length} values for shape [${x.shape}]`);
        if (x.dtype === 'float32') {
          const d = x.data as Float32Array;
          for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) assert.fail(`${file}: ${k}[${i}] = ${d[i]}`);
        }
      }
    }
  }
  assert.ok(files >= 2, `found ${files} fixture files`);
  console.log(`# golden: ${files} safetensors files, ${tensors} tensors`);

  const known: [string, string, string, number[], T.DType][] = [
    ['discriminator', 'weights', 'main.0.weight', [8, 3, 4, 4], 'float32'],
    ['discriminator', 'weights', 'main.3.num_batches_tracked', [], 'int64'],
    ['discriminator', 'weights', 'main.6.running_var', [32], 'float32'],
    ['discriminator', 'io', 'x', [2, 3, 32, 32], 'float32'],
    ['autoencoder_kl', 'weights', 'decoder.conv_in.weight', [64, 4, 3, 3], 'float32'],
    ['autoencoder_kl', 'io', 'posterior.mean', [2, 4, 16, 16], 'float32'],
    ['ldm_train_step', 'io', 't', [3], 'int64'],
    ['ldm_train_step', 'io', 'grad.model.diffusion_model.out.2.weight', [4, 32, 3, 3], 'float32'],
    ['ldm_train_step', 'weights', 'cond_stage_model.embedding.weight', [11, 16], 'float32'],
    ['bert_embedder', 'io', 'tokens', [2, 12], 'int64'],
  ];
  for (const [dir, kind, key, shape, dtype] of known) {
    const file = path.join(golden, dir, `${kind}.safetensors`);
    if (!existsSync(file)) continue;
    const x = readSafetensors(file).tensors.get(key);
    assert.ok(x, `${file}: has ${key}`);
    assert.deepEqual(x.shape, shape, `${file}: ${key} shape`);
    assert.equal(x.dtype, dtype, `${file}: ${key} dtype`);
  }
  // BatchNorm statistics look like statistics: variances are positive.
  const disc = path.join(golden, 'discriminator', 'weights.safetensors');
  if (existsSync(disc)) {
    const w = readSafetensors(disc).tensors;
    assert.ok(w.get('main.3.running_var')!.toArray().every((v) => v > 0));
  }
});
