import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MNIST, splitDataset } from '../../src/data/index.js';
import { optionalPackageDir } from '../../src/data/packages.js';

test('MNIST from the mnist package: 10,000 digits, counts per class, 32×32 padded exactly, values in [-1, 1]', () => {
  const ds = new MNIST();
  assert.equal(ds.length, 10000);
  assert.equal(ds.size, 32);
  assert.equal(ds.channels, 1);
  assert.deepEqual(ds.classCounts(), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  const ex = ds.get(0);
  assert.equal(ex.class_label, 0);
  assert.equal(ex.relpath, 'mnist/0/0000');
  assert.equal(ex.image.length, 32 * 32);
  // The 2-px border is background; the package's first zero has 0.2, 0.624, 0.992 at row 4, columns 12..14
  // (x/255 to 3 decimals: bytes 51, 159, 253).
  for (let k = 0; k < 32; k++) {
    for (const [y, x] of [[0, k], [1, k], [30, k], [31, k], [k, 0], [k, 1], [k, 30], [k, 31]]) assert.equal(ex.image[y * 32 + x], -1);
  }
  const at = (y: number, x: number) => ex.image[(y + 2) * 32 + x + 2];
  assert.equal(at(4, 14), -1);
  assert.equal(at(4, 15), Math.fround(51 / 127.5 - 1));
  assert.equal(at(4, 16), Math.fround(159 / 127.5 - 1));
  assert.equal(at(4, 17), Math.fround(253 / 127.5 - 1));
  let lo = Infinity, hi = -Infinity;
  for (const i of [0, 1234, 5000, 9999]) for (const v of ds.get(i).image) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  assert.equal(lo, -1);
  assert.equal(hi, 1);
  assert.equal(ds.get(9999).class_label, 9);
  assert.equal(ds.get(1001).class_label, 1);
  assert.equal(ds.get(1000).class_label, 0);
  assert.equal(ds.get(1001).caption, 'a handwritten digit one');
});

test('MNIST options: 28×28 unpadded, 3 channels repeat the gray one; bad sizes are refused', () => {
  const a = new MNIST({ size: 28 }).get(17).image;
  const b = new MNIST({ size: 32, channels: 3 }).get(17).image;
  assert.equal(a.length, 784);
  assert.equal(b.length, 3 * 1024);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) for (let c = 0; c < 3; c++) assert.equal(b[c * 1024 + (y + 2) * 32 + x + 2], a[y * 28 + x]);
  assert.throws(() => new MNIST({ size: 31 }), /28 plus an even number/);
  assert.throws(() => new MNIST({ size: 26 }), /28 plus an even number/);
  assert.throws(() => new MNIST().get(10000), /index 10000 out of range/);
});

test('MNIST held-out split: 1,000 digits, deterministic from the seed, disjoint, covering the set', () => {
  const ds = new MNIST();
  const s1 = splitDataset(ds, { heldOut: 1000, seed: 0 });
  const s2 = splitDataset(ds, { heldOut: 1000, seed: 0 });
  const s3 = splitDataset(ds, { heldOut: 1000, seed: 1 });
  assert.equal(s1.heldOut.length, 1000);
  assert.equal(s1.train.length, 9000);
  assert.deepEqual(s1.heldOut.indices, s2.heldOut.indices);
  assert.notDeepEqual(s1.heldOut.indices, s3.heldOut.indices);
  // Indices in ascending numeric order (a plain sort() would order them as strings: 1, 10, 100, 2 …).
  for (const s of [s1.heldOut, s1.train]) for (let i = 1; i < s.indices.length; i++) assert.ok(s.indices[i - 1] < s.indices[i], `index order at ${i}`);
  const all = new Set([...s1.heldOut.indices, ...s1.train.indices]);
  assert.equal(all.size, 10000);
  // Every class is represented in the held-out digits, roughly in proportion.
  const counts = new Array(10).fill(0);
  for (let i = 0; i < s1.heldOut.length; i++) counts[s1.heldOut.get(i).class_label!]++;
  for (const c of counts) assert.ok(c > 60 && c < 150, `held-out class counts ${counts}`);
  assert.deepEqual(s1.heldOut.get(5), ds.get(s1.heldOut.indices[5]));
  assert.equal(splitDataset(ds, { heldOut: 0.1, seed: 0 }).heldOut.length, 1000);
  assert.throws(() => splitDataset(ds, { heldOut: 10000, seed: 0 }), /cannot hold out 10000 of 10000/);
  assert.throws(() => splitDataset(ds, { heldOut: 2.5, seed: 0 }), /count ≥ 1 or a fraction/);
});

test('an absent optional package gives the npm install command', () => {
  assert.throws(() => optionalPackageDir('ldm-ts-no-such-package', 'Example'), /the Example dataset needs the optional npm package 'ldm-ts-no-such-package'.*npm install --save-dev ldm-ts-no-such-package/);
});
