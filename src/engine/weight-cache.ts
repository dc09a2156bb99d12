// Packed weights kept across calls: inside withWeightCache(bytes, fn), a convolution whose forward transforms its
// weights before multiplying (Winograd: U = G g Gᵀ per kernel, 16/9 to 4× the weights' size) keeps the packed
// transform, within the byte budget, and later forwards with the same weights read it instead of transforming
// again. A sampling run calls the same UNet dozens of times, so all but the first call skip the transforms (1.2–1.45×
// on 8×8 and 16×16 layers of 576–960 channels). The outputs are bit-identical to those of uncached calls.
//
// The scope's promise: no weight a cached forward has read is modified before the scope ends (the cache keys on
// the tensor's storage, not on its values). Packs are dropped at the end of the outermost scope. The budget that
// samplers use by default is LDM_WEIGHT_CACHE_MB (0, off, unless set): the packs cost memory — a 64 × 64-latent
// cin256-v2 UNet keeps ~1.6 GB of them — so they are for callers that have it to spare.

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

interface Scope extends WeightCacheStats {
  packs: WeakMap<Storage, Map<string, Float32Array>>;
}

let scope: Scope | null = null;

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
 * Runs fn with a cache of packed weights of at most `budgetBytes` (0 or less: none), dropped when the outermost
 * scope returns. An inner scope shares the outer one's cache (and budget). fn must not modify the weights it uses.
 */
export function withWeightCache<R>(budgetBytes: number, fn: () => R): R {
  if (scope || !(budgetBytes > 0)) return fn();
  scope = { packs: new WeakMap(), bytes: 0, budget: budgetBytes, hits: 0, packed: 0, overBudget: 0 };
  try {
    return fn();
  } finally {
    scope = null;
  }
}

/** The open scope's counters, or null outside withWeightCache. */
export function weightCacheStats(): WeightCacheStats | null {
  if (!scope) return null;
  const { bytes, budget, hits, packed, overBudget } = scope;
  return { bytes, budget, hits, packed, overBudget };
}

/**
 * The kept pack of conv weight w (dense data wd) for geometry g, packing it now when there is room; null
 * outside a scope, where g's forward has nothing to pack, or when the budget is spent.
 */
export function convWeightPack(w: Tensor, wd: ArrayLike<number>, g: ConvGeometry): Float32Array | null {
  if (!scope || !(wd instanceof Float32Array)) return null;
  const info = K.conv2dPackInfo(g);
  if (!info) return null;
  const storage = w.storage;
  let mine = scope.packs.get(storage);
  const key = `${w.offset}:${info.layout}:${info.floats}`;
  const kept = mine?.get(key);
  if (kept) {
    scope.hits++;
    return kept;
  }
  const bytes = info.floats * 4;
  if (scope.bytes + bytes > scope.budget) {
    scope.overBudget++;
    return null;
  }
  const pack = new Float32Array(info.floats);
  K.conv2dPackWeights(g, wd, pack);
  if (!mine) scope.packs.set(storage, (mine = new Map()));
  mine.set(key, pack);
  scope.bytes += bytes;
  scope.packed++;
  return pack;
}
