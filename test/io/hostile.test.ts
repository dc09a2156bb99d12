// Hostile checkpoints and images beyond the fuzz corpus: silent corruption, expansion bombs, signals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, convertToSafetensors, readCheckpoint } from '../../src/io/ckpt.js';
import { decodeImage, ImageError } from '../../src/io/image.js';
import { readFileSync } from 'node:fs';
import { rebuild, storageRef, torchZip } from '../../scripts/fuzz/zip-pickle.js';

const repo = path.resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ldm-hostile-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

test('a bit flip in a stored storage is caught by its CRC-32, not loaded silently', () => {
  const good = torchZip([['w', rebuild(storageRef('FloatStorage', '0', 4), 0, [2, 2], [2, 1])]], [['0', f32([1, 2, 3, 4])]]);
  const file = path.join(tmp, 'flip.ckpt');
  writeFileSync(file, good);
  const c = readCheckpoint(file);
  assert.deepEqual(c.stateDict.get('w')!.load().toArray(), [1, 2, 3, 4]);
  c.close();
  // flip one bit of the float data (the last 4 data bytes before the version entry's header)
  const bad = good.slice();
  const at = Buffer.from(bad).indexOf(Buffer.from(f32([1, 2, 3, 4])));
  bad[at + 5] ^= 0x10;
  writeFileSync(file, bad);
  const d = readCheckpoint(file);
  assert.throws(() => d.stateDict.get('w')!.load(), (e: Error) => e.message === `${file}: CRC-32 mismatch in entry archive/data/0 (file is corrupt)`);
  d.close();
});

test('a zero-stride tensor cannot expand a tiny file; convert refuses it and writes nothing', () => {
  const file = path.join(tmp, 'expand.ckpt');
  writeFileSync(file, torchZip([['model.w', rebuild(storageRef('FloatStorage', '0', 16), 0, [20000, 20000], [0, 0])]], [['0', new Uint8Array(64)]]));
  const t0 = Date.now();
  assert.throws(() => readCheckpoint(file), (e: Error) => e instanceof CheckpointError && e.message.includes(file) &&
    /tensor model\.w \(size \[20000,20000\], strides \[0,0\], offset 0\) has 400000000 elements but its storage archive\/data\/0 holds only 16/.test(e.message));
  const out = path.join(tmp, 'expand.safetensors');
  assert.throws(() => convertToSafetensors(file, out), CheckpointError);
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('expand.safetensors')), []);
  // sizes of the wrong type are refused too (convert used to write a file its own reader rejected)
  writeFileSync(file, torchZip([['w', rebuild(storageRef('FloatStorage', '0', 16), 0, ['a', 'b'], [1, 1])]], [['0', new Uint8Array(64)]]));
  assert.throws(() => convertToSafetensors(file, out), /tensor with size \("a", "b"\), stride \(1, 1\), storage offset 0: expected tuples of non-negative integers/);
  assert.equal(existsSync(out), false);
});

test('a valid progressive JPEG with restart markers decodes (the gradient it encodes comes back)', () => {
  const seeds = path.join(repo, 'scripts/fuzz/seeds');
  const img = decodeImage(readFileSync(path.join(seeds, 'progressive-rst3.jpg')), 'p.jpg');
  assert.deepEqual([img.width, img.height], [37, 29]);
  // the encoder's gradient: red rises along x, green along y (JPEG error stays within a few levels)
  const px = (x: number, y: number) => [...img.data.subarray(4 * (y * 37 + x), 4 * (y * 37 + x) + 3)];
  for (const [x, y] of [[2, 2], [12, 10], [30, 20], [20, 26], [2, 26]]) {
    const [r, g] = px(x, y);
    assert.ok(Math.abs(r - Math.floor((x * 255) / 37)) <= 12 && Math.abs(g - Math.floor((y * 255) / 29)) <= 12, `pixel ${x},${y}: ${px(x, y)}`);
  }
  // a PNG declaring 2147483647 × 1 is refused before any decoder runs (it used to abort inside zlib)
  const png = readFileSync(path.join(repo, 'test/fixtures/fuzz-corpus/png/hand-wide-2147483647.png'));
  assert.throws(() => decodeImage(png, 'wide.png'), (e: Error) => e instanceof ImageError && /wide\.png: not a readable PNG: IHDR declares 2147483647 × 1 = 2147483647 pixels, more than the 33554432/.test(e.message));
});
