// Seeded randomness and the byte-level mutators every format shares.

/** xorshift128+ style generator from a 32-bit seed (mulberry32): same seed, same inputs. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Numbers that break size arithmetic. */
export const INTERESTING = [0, 1, -1, 2, 7, 8, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e9, 1e15, 1e300, -(2 ** 31), 100000, 20000];

export type Mutator = (b: Uint8Array, r: Rng) => Uint8Array;

export const truncate: Mutator = (b, r) => b.slice(0, r.int(b.length));
export const bitFlips: Mutator = (b, r) => {
  const o = b.slice();
  for (let k = 1 + r.int(8); k > 0 && o.length; k--) o[r.int(o.length)] ^= 1 << r.int(8);
  return o;
};
export const byteSet: Mutator = (b, r) => {
  const o = b.slice();
  for (let k = 1 + r.int(4); k > 0 && o.length; k--) o[r.int(o.length)] = r.pick([0, 0xff, 0x7f, 0x80, 0x01, r.int(256)]);
  return o;
};
export const intOverwrite: Mutator = (b, r) => {
  if (b.length < 8) return bitFlips(b, r);
  const o = b.slice();
  const dv = new DataView(o.buffer);
  const p = r.int(o.length - 8);
  const v = r.pick(INTERESTING);
  const le = r.chance(0.5);
  switch (r.int(3)) {
    case 0: dv.setUint16(p, v & 0xffff, le); break;
    case 1: dv.setUint32(p, v >>> 0, le); break;
    default: dv.setBigInt64(p, BigInt.asIntN(64, BigInt(Math.trunc(Math.min(v, 2 ** 63 - 1)))), le);
  }
  return o;
};
export const spliceRange: Mutator = (b, r) => {
  const a = r.int(b.length + 1), len = r.int(Math.min(64, b.length - a) + 1);
  switch (r.int(3)) {
    case 0: return concat(b.subarray(0, a), b.subarray(a + len)); // delete
    case 1: return concat(b.subarray(0, a + len), b.subarray(a, a + len), b.subarray(a + len)); // duplicate
    default: { // insert random bytes
      const ins = new Uint8Array(1 + r.int(16)).map(() => r.int(256));
      return concat(b.subarray(0, a), ins, b.subarray(a));
    }
  }
};

export const GENERIC: Mutator[] = [truncate, bitFlips, byteSet, intOverwrite, spliceRange];

export function generic(b: Uint8Array, r: Rng): Uint8Array {
  return r.pick(GENERIC)(b, r);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);
