import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Emoji, splitDataset } from '../../src/data/index.js';

test('emoji set: 3,786 images, 10 categories, captions from names and short names, RGBA on white', () => {
  const ds = new Emoji();
  assert.equal(ds.length, 3786);
  assert.equal(ds.size, 64);
  assert.equal(ds.channels, 3);
  assert.equal(ds.numClasses, 10);
  assert.deepEqual(ds.classNames, ['Smileys & Emotion', 'People & Body', 'Component', 'Animals & Nature', 'Food & Drink', 'Travel & Places', 'Activities', 'Objects', 'Symbols', 'Flags']);
  const first = ds.get(0);
  assert.equal(first.relpath, '1f600.png');
  assert.equal(first.caption, 'grinning face, grinning');
  assert.equal(first.class_label, 0);
  assert.equal(first.human_label, 'Smileys & Emotion');
  assert.equal(first.image.length, 3 * 64 * 64);
  // The corners are transparent in the PNG: composited on white.
  for (let c = 0; c < 3; c++) assert.equal(first.image[c * 4096], 1);
  let lo = Infinity;
  for (const v of first.image) lo = Math.min(lo, v);
  assert.ok(lo < -0.5 && first.image.every((v) => v >= -1 && v <= 1));
  const toned = Array.from({ length: ds.length }, (_, i) => i).map((i) => ds.records[i]).find((r) => r.relpath === '1f476-1f3ff.png')!;
  assert.equal(toned.caption, 'baby, dark skin tone');
  assert.equal(toned.class_label, 1);
  const sub = new Emoji({ classes: 'subcategory', baseOnly: true, size: 32 });
  assert.equal(sub.length, 1911);
  assert.equal(sub.numClasses, sub.classNames!.length);
  assert.ok(sub.numClasses! > 90);
  assert.equal(sub.classNames![sub.get(0).class_label!], 'face-smiling');
  assert.equal(sub.get(0).image.length, 3 * 32 * 32);
  assert.equal(splitDataset(ds, { heldOut: 200, seed: 0 }).train.length, 3586);
});
