import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import * as T from '../../src/engine/index.js';
import { crc32, imageToTensor, makeGrid, readImage, readPngText, tensorToImages, writePng } from '../../src/io/image.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ldm-image-'));

test('uint8 conversion truncates like the reference: clamp((x+1)/2)·255 → uint8', () => {
  const x = T.tensor([-2, -1, 0, 0.999, 1, 5, 0.5, -0.5, 0.0039], [1, 1, 3, 3]);
  const [im] = tensorToImages(x);
  // 0 → 0.5·255 = 127.5 → 127 (rounding would give 128); 0.999 → 254.87 → 254
  assert.deepEqual([...im.data], [0, 0, 127, 254, 255, 255, 191, 63, 127]);
});

test('PNG round trip (RGB and gray) with tEXt / iTXt generation parameters', () => {
  const rgb = new Uint8Array(5 * 4 * 3).map((_, i) => (i * 37) % 256);
  const p = path.join(dir, 'a.png');
  writePng(p, { width: 5, height: 4, channels: 3, data: rgb }, { prompt: 'a painting of a fox', seed: '42', note: 'unicode ✓ ok' });
  const back = readImage(p);
  assert.equal(back.width, 5);
  assert.equal(back.height, 4);
  const t = imageToTensor(back, 'rgb', 'unit');
  assert.deepEqual(t.shape, [1, 3, 4, 5]);
  const tv = t.toArray();
  const hw = 20;
  assert.deepEqual(rgb.map((_, i) => Math.round(tv[(i % 3) * hw + Math.floor(i / 3)] * 255)), rgb, 'pixels survive the file');
  // x/127.5 − 1 then the truncating uint8 conversion loses at most one level (as in the reference)
  const again = tensorToImages(imageToTensor(back))[0];
  assert.ok(again.data.every((v, i) => v <= rgb[i] && rgb[i] - v <= 1));
  assert.deepEqual(readPngText(p), { prompt: 'a painting of a fox', seed: '42', note: 'unicode ✓ ok' });
  // The file is a valid PNG: chunk CRCs check out.
  const buf = readFileSync(p);
  let q = 8, n = 0;
  while (q < buf.length) {
    const len = buf.readUInt32BE(q);
    assert.equal(buf.readUInt32BE(q + 8 + len), crc32(buf.subarray(q + 4, q + 8 + len)));
    q += 12 + len;
    n++;
  }
  assert.ok(n >= 6);
  const g = path.join(dir, 'g.png');
  writePng(g, { width: 2, height: 1, channels: 1, data: new Uint8Array([10, 250]) });
  const gt = imageToTensor(readImage(g), 'gray', 'unit').toArray();
  assert.deepEqual(gt.map((v) => Math.round(v * 255)), [10, 250]);
});

test('JPEG input and error messages', () => {
  const w = 8, h = 8;
  const data = new Uint8Array(w * h * 4).fill(200);
  const p = path.join(dir, 'a.jpg');
  writeFileSync(p, jpeg.encode({ width: w, height: h, data }, 95).data);
  const im = readImage(p);
  assert.equal(im.width, 8);
  assert.ok(Math.abs(im.data[0] - 200) <= 2);
  const bad = path.join(dir, 'bad.png');
  writeFileSync(bad, 'hello');
  assert.throws(() => readImage(bad), /unsupported image format/);
  assert.throws(() => readImage(path.join(dir, 'missing.png')), /cannot read image/);
});

test('grid like torchvision make_grid (padding 2, black)', () => {
  const ims = [0, 1, 2].map((k) => ({ width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12).fill(100 + k) }));
  const g = makeGrid(ims, 2);
  assert.equal(g.width, 2 * 4 + 2);
  assert.equal(g.height, 2 * 4 + 2);
  const px = (x: number, y: number) => g.data[(y * g.width + x) * 3];
  assert.equal(px(0, 0), 0);
  assert.equal(px(2, 2), 100);
  assert.equal(px(6, 3), 101);
  assert.equal(px(2, 6), 102);
  assert.equal(px(7, 7), 0);
});
