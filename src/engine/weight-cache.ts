// Packed weights kept across calls: while a WeightCache is in use (cache.run(fn), or withWeightCache(bytes, fn)
// for one run), a convolution whose forward transforms its weights before multiplying (Winograd: U = G g Gᵀ per
// kernel, 16/9 to 4× the weights' size) keeps the packed transform, and a linear layer keeps its weight packed
// as the GEMM's B panels (1× its size), within the byte budget; later calls with the same weights read the packs
// instead of making them again. A sampling run calls the same UNet dozens of times, so all but the first call
// skip the packing (1.2–1.45× on 8×8 and 16×16 convolutions of 576–960 channels, 1.2–1.3× on linear layers
// over 64–256 tokens). The outputs are bit-identical to those of uncached calls.
//
// The promise a cache's user makes: no weight it has packed is modified while the cache lives (it keys on the
// tensor's storage, not on its values). The budget samplers use by default is LDM_WEIGHT_CACHE_MB (0, off,
// unless set): the packs cost memory — a 64 × 64-latent cin256-v2 or celebahq UNet keeps 2.0–2.2 GB of them —
// so they are for callers that have it to spare.

import type { FloatArray } from './dtype.js';
import type { ConvGeometry } from './kernels/conv.js';
import { K } from './kernels/index.js';
import type { Storage, Tensor } from './tensor.js';

export interface WeightCacheStats {
  /** Bytes of packs held, and the budget. */
  bytes: number;
  budget: number;
  /** Forwards that read a kept pack / packed and kept one / found no room (ran as uncached). */
  hits: number;
  packed: number;
  overBudget: number;
}

/**
 * A cache of packed weights with a byte budget. `run(fn)` makes it the one convolutions use while fn runs (a
 * long-lived cache serves many runs: a server keeps one per loaded model and skips even the first call's
 * packing); withWeightCache(bytes, fn) is a cache for one run. While it lives, the weights it has packed must
 * not change.
 */
export class WeightCache {
  private packs = new WeakMap<Storage, Map<string, Float32Array>>();
  private counts: WeightCacheStats;

  constructor(budgetBytes: number) {
    if (!(budgetBytes >= 0)) throw new RangeError(`WeightCache: the budget must be a number of bytes ≥ 0, got ${budgetBytes}`);
    this.counts = { bytes: 0, budget: budgetBytes, hits: 0, packed: 0, overBudget: 0 };
  }

  /** fn() with this cache in use (the cache that was in use before comes back afterwards). */
  run<R>(fn: () => R): R {
    const before = active;
    active = this;
    try {
      return fn();
    } finally {
      active = before;
    }
  }

  stats(): WeightCacheStats {
    return { ...this.counts };
  }

  /** Drops every pack (for weights that are about to change). */
  clear(): void {
    this.packs = new WeakMap();
    this.counts.bytes = 0;
  }

  /** w's pack for geometry g (see convWeightPack). */
  convPack(w: Tensor, wd: Float32Array, g: ConvGeometry): Float32Array | null {
    const info = K.conv2dPackInfo(g);
    return info && this.kept(w.storage, `conv:${w.offset}:${info.layout}`, info.floats, (pack) => K.conv2dPackWeights(g, wd, pack));
  }

  /** The pack of a product's B operand read from a weight's storage (see linearWeightPack). */
  gemmPack(storage: Storage, B: PackedOperand, Kd: number, N: number): Float32Array | null {
    const info = K.gemmPackInfo(Kd, N);
    const key = `gemm:${B.offset}:${B.ld}:${B.trans}:${Kd}:${N}:${info?.layout}`;
    return info && this.kept(storage, key, info.floats, (pack) => K.gemmPackB(Kd, N, B.data, B.offset, B.ld, B.trans, pack));
  }

  private kept(storage: Storage, key: string, floats: number, fill: (pack: Float32Array) => void): Float32Array | null {
    const c = this.counts;
    let mine = this.packs.get(storage);
    const have = mine?.get(key);
    if (have && have.length === floats) {
      c.hits++;
      return have;
    }
    const bytes = floats * 4;
    if (c.bytes + bytes > c.budget) {
      c.overBudget++;
      return null;
    }
    const pack = new Float32Array(floats);
    fill(pack);
    if (!mine) this.packs.set(storage, (mine = new Map()));
    mine.set(key, pack);
    c.bytes += bytes;
    c.packed++;
    return pack;
  }
}

let active: WeightCache | null = null;

function budgetFromEnv(): number {
  const v = process.env.LDM_WEIGHT_CACHE_MB;
  if (v === undefined || v === '') return 0;
  const mb = Number(v);
  if (!Number.isFinite(mb) || mb < 0) throw new RangeError(`LDM_WEIGHT_CACHE_MB must be a number of megabytes ≥ 0, got "${v}"`);
  return mb * 2 ** 20;
}
let defaultBudget = budgetFromEnv();

/** The budget (bytes) samplers give withWeightCache unless told otherwise: LDM_WEIGHT_CACHE_MB at start-up. */
export function weightCacheBudget(): number {
  return defaultBudget;
}
export function setWeightCacheBudget(bytes: number): void {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`setWeightCacheBudget: bytes must be ≥ 0, got ${bytes}`);
  defaultBudget = bytes;
}

/**
 * Runs fn with a cache of packed weights of at most `budgetBytes` (0 or less: none), dropped when fn returns.
 * Inside a cache already in use (an outer withWeightCache, or WeightCache.run), fn uses that one.
 */
export function withWeightCache<R>(budgetBytes: number, fn: () => R): R {
  if (active || !(budgetBytes > 0)) return fn();
  return new WeightCache(budgetBytes).run(fn);
}

/** The counters of the cache in use, or null when none is. */
export function weightCacheStats(): WeightCacheStats | null {
  return active ? active.stats() : null;
}

/**
 * The kept pack of conv weight w (dense data wd) for geometry g, packing it now when there is room; null
 * outside a scope, where g's forward has nothing to pack, or when the budget is spent.
 */
export function convWeightPack(w: Tensor, wd: ArrayLike<number>, g: ConvGeometry): Float32Array | null {
  return active && wd instanceof Float32Array ? active.convPack(w, wd, g) : null;
}

/** A GEMM operand as the matmul op hands it to the kernel. */
export interface PackedOperand {
  data: FloatArray;
  offset: number;
  ld: number;
  trans: boolean;
}

/**
 * The kept pack of a linear layer's weight w as the product's B operand (K × N, read from w's storage as `B`
 * says), packing it now when there is room; null outside a cache, where the kernels pack nothing, or when the
 * budget is spent.
 */
export function linearWeightPack(w: Tensor, B: PackedOperand, Kd: number, N: number): Float32Array | null {
  return active && B.data instanceof Float32Array && B.data === w.storage.data ? active.gemmPack(w.storage, B, Kd, N) : null;
}
