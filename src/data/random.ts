// Randomness of the data pipeline as pure functions of the seed: the order of each epoch, the held-out split
// and every example's augmentation draw are computed from (seed, stream, epoch, index) by hashing them into a
// fresh generator seed. Nothing depends on how many numbers were drawn before, so prefetching, worker
// scheduling and resuming cannot change what a batch contains.

import { Generator } from '../engine/random.js';
import type { AugDraw } from './types.js';

/** Stream tags: one per purpose, so the split and the epoch orders never share numbers. */
export const STREAM = { order: 1, split: 2, augment: 3 } as const;

/** A 32-bit hash of a few non-negative integers (murmur3's finaliser over a running mix). */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    if (!Number.isInteger(p) || p < 0) throw new RangeError(`mixSeed: expected non-negative integers, got ${p}`);
    // Both 32-bit halves of values up to 2^53.
    for (const w of [p >>> 0, Math.floor(p / 4294967296) >>> 0]) {
      let k = Math.imul(w, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator for (seed, stream, ...more). */
export function streamGenerator(seed: number, stream: number, ...more: number[]): Generator {
  return new Generator(mixSeed(seed, stream, ...more));
}

/** A uniformly random permutation of 0..n−1 (Fisher–Yates, from the last element down). */
export function permutation(n: number, gen: Generator): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = gen.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The order of epoch `epoch` (0-based) for `n` examples. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return p;
  }
  return permutation(n, streamGenerator(seed, STREAM.order, epoch));
}

/** The augmentation draw of example `index` in epoch `epoch`. */
export function augDraw(seed: number, epoch: number, index: number): AugDraw {
  const g = streamGenerator(seed, STREAM.augment, epoch, index);
  return { cropY: g.uniform(), cropX: g.uniform(), flip: g.uniform() };
}
