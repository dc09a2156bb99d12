import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floatToHalfBits, floatsToHalfBytes } from '../../src/io/half.js';
import { halfToFloat } from '../../src/io/safetensors.js';

const back = (bits: number) => halfToFloat(new Uint8Array(new Uint16Array([bits]).buffer), false)[0];

test('float → half: exact values, ties to even, overflow, subnormals, signed zero, NaN', () => {
  assert.equal(floatToHalfBits(1), 0x3c00);
  assert.equal(floatToHalfBits(-2), 0xc000);
  assert.equal(floatToHalfBits(65504), 0x7bff); // largest finite half
  assert.equal(floatToHalfBits(65520), 0x7c00); // rounds up to Inf
  assert.equal(floatToHalfBits(1e6), 0x7c00);
  assert.equal(floatToHalfBits(-Infinity), 0xfc00);
  assert.equal(floatToHalfBits(-0), 0x8000);
  assert.ok((floatToHalfBits(NaN) & 0x7c00) === 0x7c00 && (floatToHalfBits(NaN) & 0x3ff) !== 0);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even → 1; 1 + 3·2^-11 → 1 + 2^-9 (even mantissa 2)
  assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00);
  assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(floatToHalfBits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(floatToHalfBits(2 ** -25), 0x0000); // halfway to 0: ties to even
  assert.equal(floatToHalfBits(3 * 2 ** -25), 0x0002);
  assert.equal(floatToHalfBits(2 ** -14), 0x0400); // smallest normal
});

test('float → half → float is the nearest half for random values (checked against its neighbours)', () => {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const vals = Float32Array.from({ length: 5000 }, () => (rnd() - 0.5) * 2 ** Math.floor(rnd() * 36 - 24));
  const bytes = floatsToHalfBytes(vals);
  const u16 = new Uint16Array(bytes.buffer);
  for (let i = 0; i < vals.length; i++) {
    const h = u16[i], v = Math.fround(vals[i]);
    const err = Math.abs(back(h) - v);
    for (const nb of [h - 1, h + 1]) {
      if ((nb & 0x7c00) === 0x7c00 || nb < 0 || nb > 0xffff || ((nb ^ h) & 0x8000)) continue;
      assert.ok(err <= Math.abs(back(nb) - v), `value ${v}: half ${h.toString(16)} is not the nearest (neighbour ${nb.toString(16)})`);
    }
  }
});
