import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { writePng, type Image } from '../../src/io/image.js';
import { DataLoader, ImageFolder, preprocess, resizeU8, splitDataset } from '../../src/data/index.js';

const s = (b: number) => Math.fround(b / 127.5 - 1);
const draw = (cropY: number, cropX: number, flip: number) => ({ cropY, cropX, flip });
/** [C, H, W] float32 → per-pixel byte triples, row-major. */
function bytes(x: Float32Array, C: number, n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n * n; i++) out.push(Array.from({ length: C }, (_, c) => Math.round((x[c * n * n + i] + 1) * 127.5)));
  return out;
}

// 3 wide × 2 high.
const PX = [[10, 20, 30], [40, 50, 60], [70, 80, 90], [200, 150, 100], [0, 255, 128], [255, 0, 1]];
const img3x2: Image = { width: 3, height: 2, channels: 3, data: Uint8Array.from(PX.flat()) };

test('preprocessing of a 3×2 image: center / random crop, flip, x/127.5 − 1, [C, H, W] layout', () => {
  const center = preprocess(img3x2, { size: 2, flipP: 1 });
  // R plane of columns 0..1, then G, then B: no draw means center crop and no flip even with flipP = 1.
  assert.deepEqual([...center], [10, 40, 200, 0, 20, 50, 150, 255, 30, 60, 100, 128].map(s));
  assert.deepEqual(bytes(preprocess(img3x2, { size: 2, randomCrop: true }, draw(0, 0.4, 0)), 3, 2), [PX[0], PX[1], PX[3], PX[4]]);
  assert.deepEqual(bytes(preprocess(img3x2, { size: 2, randomCrop: true }, draw(0, 0.6, 0)), 3, 2), [PX[1], PX[2], PX[4], PX[5]]);
  // Flip when the draw is below flipP.
  assert.deepEqual(bytes(preprocess(img3x2, { size: 2, randomCrop: true, flipP: 0.5 }, draw(0, 0.6, 0.49)), 3, 2), [PX[2], PX[1], PX[5], PX[4]]);
  assert.deepEqual(bytes(preprocess(img3x2, { size: 2, randomCrop: true, flipP: 0.5 }, draw(0, 0.6, 0.5)), 3, 2), [PX[1], PX[2], PX[4], PX[5]]);
  // Center crop ignores the crop draw.
  assert.deepEqual(bytes(preprocess(img3x2, { size: 2 }, draw(0.9, 0.9, 0.9)), 3, 2), [PX[0], PX[1], PX[3], PX[4]]);
  // Gray: PIL's convert("L") = (299 R + 587 G + 114 B + 500) // 1000.
  assert.deepEqual([...preprocess(img3x2, { size: 2, channels: 1 })], [18, 48, 159, 164].map(s));
});

test('resizing matches Pillow byte for byte (short side to size, long side rounded half to even)', () => {
  // Image.resize((2, 1), BICUBIC) of the 3×2 image (from Pillow 12): short side 2 → 1, long side round(1.5) = 2.
  assert.deepEqual([...resizeU8(img3x2.data, 3, 2, 3, 2, 1, 'bicubic')], [70, 113, 77, 110, 82, 64]);
  assert.deepEqual([...resizeU8(img3x2.data, 3, 2, 3, 2, 1, 'bilinear')], [73, 110, 76, 109, 83, 64]);
  assert.deepEqual(bytes(preprocess(img3x2, { size: 1 }), 3, 1), [[70, 113, 77]]);
  assert.deepEqual(bytes(preprocess(img3x2, { size: 1, randomCrop: true }, draw(0, 0.9, 0)), 3, 1), [[110, 82, 64]]);
  // A 6×4 gradient to size 3: resized to 4×3 (round(4.5) = 4), center crop columns 0..2.
  const g: number[] = [];
  for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) g.push((x * 40 + y * 7) % 256, (x * 13 + y * 50) % 256, (255 - x * 30 - y * 20 + 256) % 256);
  const img: Image = { width: 6, height: 4, channels: 3, data: Uint8Array.from(g) };
  const bicubic = [[13, 13, 242], [69, 31, 200], [133, 52, 152], [189, 70, 110], [23, 79, 216], [79, 97, 174], [143, 118, 126], [199, 136, 84], [32, 145, 190], [88, 163, 148], [152, 184, 100], [208, 202, 58]];
  const lanczos = [[11, 11, 244], [70, 30, 200], [132, 51, 154], [191, 70, 110], [21, 78, 217], [80, 97, 173], [142, 118, 127], [201, 137, 83], [30, 145, 190], [89, 164, 146], [151, 185, 100], [210, 204, 56]];
  assert.deepEqual([...resizeU8(img.data, 6, 4, 3, 4, 3, 'bicubic')], bicubic.flat());
  assert.deepEqual([...resizeU8(img.data, 6, 4, 3, 4, 3, 'lanczos')], lanczos.flat());
  const crop = (t: number[][]) => [0, 1, 2].flatMap((y) => [0, 1, 2].map((x) => t[y * 4 + x]));
  assert.deepEqual(bytes(preprocess(img, { size: 3 }), 3, 3), crop(bicubic));
  assert.throws(() => resizeU8(img.data, 6, 4, 3, 4, 3, 'cubic' as never), /unknown interpolation 'cubic'/);
});

test('RGBA is composited on the background; gray PNGs become RGB', () => {
  const rgba: Image = { width: 1, height: 1, channels: 4, data: Uint8Array.from([100, 50, 0, 128]) };
  // round((v·128 + 255·127) / 255)
  assert.deepEqual(bytes(preprocess(rgba, { size: 1 }), 3, 1), [[177, 152, 127]]);
  assert.deepEqual(bytes(preprocess(rgba, { size: 1, background: [0, 0, 0] }), 3, 1), [[50, 25, 0]]);
  const clear: Image = { width: 1, height: 1, channels: 4, data: Uint8Array.from([9, 9, 9, 0]) };
  assert.deepEqual([...preprocess(clear, { size: 1 })], [1, 1, 1]);
  const gray: Image = { width: 1, height: 1, channels: 1, data: Uint8Array.from([77]) };
  assert.deepEqual([...preprocess(gray, { size: 1 })], [s(77), s(77), s(77)]);
});

function solid(w: number, h: number, rgb: number[]): Image {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) d.set(rgb, 3 * i);
  return { width: w, height: h, channels: 3, data: d };
}

function makeFolder(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ldm-data-'));
  mkdirSync(path.join(root, 'dog', 'puppies'), { recursive: true });
  mkdirSync(path.join(root, 'cat'));
  mkdirSync(path.join(root, '.hidden'));
  writePng(path.join(root, 'cat', 'a.png'), solid(6, 4, [255, 0, 0]));
  writePng(path.join(root, 'cat', 'b.png'), { width: 4, height: 4, channels: 1, data: new Uint8Array(16).fill(51) });
  writePng(path.join(root, 'dog', 'c.png'), solid(4, 8, [0, 0, 255]));
  const j = jpeg.encode({ width: 8, height: 8, data: Buffer.from(new Uint8Array(8 * 8 * 4).fill(200)) }, 100);
  writeFileSync(path.join(root, 'dog', 'puppies', 'd.jpg'), j.data);
  writePng(path.join(root, '.hidden', 'e.png'), solid(4, 4, [1, 2, 3]));
  writeFileSync(path.join(root, 'cat', 'notes.md'), 'not an image');
  return root;
}

test('image folder: recursive sorted listing, labels from sub-folders, PNG (RGB, gray) and JPEG decoded', () => {
  const root = makeFolder();
  const ds = new ImageFolder({ root, size: 4, labels: 'folders' });
  assert.equal(ds.length, 4);
  assert.deepEqual(ds.classNames, ['cat', 'dog']);
  assert.equal(ds.numClasses, 2);
  assert.deepEqual(Array.from({ length: 4 }, (_, i) => [ds.get(i).relpath, ds.get(i).class_label, ds.get(i).human_label]), [
    ['cat/a.png', 0, 'cat'], ['cat/b.png', 0, 'cat'], ['dog/c.png', 1, 'dog'], ['dog/puppies/d.jpg', 1, 'dog'],
  ]);
  assert.deepEqual(bytes(ds.get(0).image, 3, 4)[5], [255, 0, 0]);
  assert.deepEqual(bytes(ds.get(1).image, 3, 4)[0], [51, 51, 51]);
  assert.deepEqual(bytes(ds.get(2).image, 3, 4)[0], [0, 0, 255]);
  for (const v of bytes(ds.get(3).image, 3, 4).flat()) assert.ok(Math.abs(v - 200) <= 1, `JPEG value ${v}`);
  assert.equal(ds.augments, false);
  assert.equal(new ImageFolder({ root, size: 4, flipP: 0.5 }).augments, true);
  assert.equal(new ImageFolder({ root, size: 4 }).get(0).class_label, undefined);
});

test('image folder: labels from a CSV (names or integers), captions from .txt / CSV / JSONL', () => {
  const root = makeFolder();
  writeFileSync(path.join(root, 'labels.csv'), 'path,label\ncat/a.png,zebra\r\ncat/b.png,ant\ndog/c.png,zebra\n"dog/puppies/d.jpg",ant\n');
  const named = new ImageFolder({ root, size: 4, labels: 'labels.csv' });
  assert.deepEqual(named.classNames, ['ant', 'zebra']);
  assert.deepEqual([0, 1, 2, 3].map((i) => named.get(i).class_label), [1, 0, 1, 0]);
  writeFileSync(path.join(root, 'ids.csv'), 'cat/a.png,3\ncat/b.png,0\ndog/c.png,7\n./dog/puppies/d.jpg,3\n');
  const ids = new ImageFolder({ root, size: 4, labels: path.join(root, 'ids.csv') });
  assert.equal(ids.numClasses, 8);
  assert.deepEqual([0, 1, 2, 3].map((i) => ids.get(i).class_label), [3, 0, 7, 3]);
  for (const [rel, c] of [['cat/a', 'a red square'], ['cat/b', 'gray'], ['dog/c', 'blue, tall'], ['dog/puppies/d', '  light gray\n']]) writeFileSync(path.join(root, `${rel}.txt`), c);
  const txt = new ImageFolder({ root, size: 4, captions: 'txt' });
  assert.deepEqual([0, 1, 2, 3].map((i) => txt.get(i).caption), ['a red square', 'gray', 'blue, tall', 'light gray']);
  writeFileSync(path.join(root, 'caps.csv'), 'file_name,caption\ncat/a.png,"red, ""square"""\ncat/b.png,"two\nlines"\ndog/c.png,blue\ndog/puppies/d.jpg,jpeg\n');
  const csv = new ImageFolder({ root, size: 4, captions: 'caps.csv', labels: 'folders' });
  assert.deepEqual([0, 1, 2, 3].map((i) => csv.get(i).caption), ['red, "square"', 'two\nlines', 'blue', 'jpeg']);
  writeFileSync(path.join(root, 'meta.jsonl'), ['cat/a.png', 'cat/b.png', 'dog/c.png', 'dog/puppies/d.jpg'].map((f, k) => JSON.stringify({ file_name: f, text: `t${k}` })).join('\n') + '\n');
  const jl = new ImageFolder({ root, size: 4, captions: 'meta.jsonl' });
  assert.deepEqual([0, 1, 2, 3].map((i) => jl.get(i).caption), ['t0', 't1', 't2', 't3']);
});

test('image folder errors name the file: missing folder, no images, unreadable image, missing label / caption', async () => {
  const root = makeFolder();
  assert.throws(() => new ImageFolder({ root: path.join(root, 'nope'), size: 4 }), /image folder .*nope does not exist/);
  const empty = mkdtempSync(path.join(tmpdir(), 'ldm-empty-'));
  assert.throws(() => new ImageFolder({ root: empty, size: 4 }), /has no images \(looked for \.png, \.jpg, \.jpeg files, recursively\)/);
  writeFileSync(path.join(root, 'labels.csv'), 'cat/a.png,x\ncat/b.png,y\ndog/c.png,x\n');
  assert.throws(() => new ImageFolder({ root, size: 4, labels: 'labels.csv' }), /labels\.csv: no label for 1 image\(s\) under .*, e\.g\. dog\/puppies\/d\.jpg/);
  writeFileSync(path.join(root, 'labels.csv'), 'cat/a.png,x\ncat/b.png,y\ndog/c.png,x\ndog/puppies/d.jpg,y\ndog/zz.png,y\n');
  assert.throws(() => new ImageFolder({ root, size: 4, labels: 'labels.csv' }), /labels\.csv:5: dog\/zz\.png is not an image under/);
  writeFileSync(path.join(root, 'labels.csv'), 'cat/a.png,x,extra\n');
  assert.throws(() => new ImageFolder({ root, size: 4, labels: 'labels.csv' }), /labels\.csv:1: expected 2 columns/);
  assert.throws(() => new ImageFolder({ root, size: 4, labels: 'missing.csv' }), /the labels file missing\.csv does not exist/);
  writeFileSync(path.join(root, 'cat', 'a.txt'), 'only one');
  assert.throws(() => new ImageFolder({ root, size: 4, captions: 'txt' }), /3 image\(s\) have no caption file beside them \(captions: txt\), e\.g\. .*cat\/b\.txt/);
  writeFileSync(path.join(root, 'm.jsonl'), '{"file_name": "cat/a.png", "text": "x"}\n{oops\n');
  assert.throws(() => new ImageFolder({ root, size: 4, captions: 'm.jsonl' }), /m\.jsonl:2: not valid JSON/);
  const loose = makeFolder();
  writePng(path.join(loose, 'top.png'), solid(4, 4, [0, 0, 0]));
  assert.throws(() => new ImageFolder({ root: loose, size: 4, labels: 'folders' }), /top\.png is not inside a class sub-folder/);
  assert.throws(() => new ImageFolder({ root, size: 4, interpolation: 'cubic' as never }), /interpolation must be one of box, bilinear, bicubic, lanczos/);
  writeFileSync(path.join(root, 'cat', 'broken.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
  const ds = new ImageFolder({ root, size: 4 });
  assert.throws(() => ds.get(2), /cat\/broken\.png: not a readable PNG/);
  const l = new DataLoader(ds, { batchSize: 5, seed: 0, shuffle: false, workers: 1 });
  await assert.rejects(l.next(), /cat\/broken\.png: not a readable PNG/);
  await l.close();
});

test('image folder through the worker pool: the same batches as on the main thread, augmented from the seed', async () => {
  const root = makeFolder();
  // A split side (a Subset) travels to the worker as its base's spec plus the indices.
  const ds = splitDataset(new ImageFolder({ root, size: 4, labels: 'folders', randomCrop: true, flipP: 0.5 }), { heldOut: 1, seed: 2 }).train;
  assert.equal(ds.length, 3);
  assert.equal(ds.augments, true);
  const o = { batchSize: 2, seed: 5 };
  const a = new DataLoader(ds, { ...o, workers: 1 });
  const b = new DataLoader(ds, { ...o, workers: 0 });
  for (let k = 0; k < 5; k++) {
    const [x, y] = [await a.next(), await b.next()];
    assert.deepEqual(x.indices, y.indices);
    assert.deepEqual(x.image.toArray(), y.image.toArray());
    assert.deepEqual(x.class_label!.toArray(), y.class_label!.toArray());
    assert.deepEqual(x.human_label, y.human_label);
  }
  await a.close();
  await b.close();
});

test('image folder through a worker: 2,000 batches keep RSS flat (buffers transferred, nothing retained)', async () => {
  const root = makeFolder();
  const ds = new ImageFolder({ root, size: 4, labels: 'folders', randomCrop: true, flipP: 0.5, cache: true });
  const l = new DataLoader(ds, { batchSize: 4, seed: 1, workers: 1, prefetch: 2 });
  let rss0 = 0;
  const t0 = performance.now();
  for (let k = 0; k < 2000; k++) {
    const b = await l.next();
    assert.equal(b.indices.length, 4);
    b.image.dispose();
    b.class_label!.dispose();
    if (k === 300) rss0 = process.memoryUsage().rss;
  }
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(`# worker batches: ${((performance.now() - t0) / 2000).toFixed(3)} ms per batch of 4; RSS change over 1,700 batches ${grown.toFixed(1)} MiB`);
  assert.ok(grown < 24, `RSS grew ${grown.toFixed(1)} MiB`);
  assert.equal(l.state().epoch, 2000);
  await l.close();
});
