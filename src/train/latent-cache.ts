// Cached latents: the training set encoded once by the frozen first stage. What is stored is the
// posterior's moments (AutoencoderKL: mean and log-variance, [N, 2·z, h, w]; a VQ interface's latent as is),
// so every step still draws a fresh posterior sample, as encoding per step would — at a fraction of the cost
// (most of a CPU step would otherwise go to the encoder). The cache is kept in the run folder and reused on
// resume when it matches the first stage's weights and the dataset size.

import { existsSync } from 'node:fs';
import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { DiagonalGaussianDistribution } from '../models/autoencoder/distribution.js';
import type { Dataset } from '../data/index.js';
import type { Shard } from './data-parallel.js';

export class LatentCache {
  constructor(readonly data: Float32Array, readonly shape: number[], readonly gaussian: boolean) {}

  get length(): number {
    return this.shape[0];
  }

  /** Moments (or latents) of dataset examples `indices`, [B, C, h, w]. */
  moments(indices: number[]): T.Tensor {
    const per = this.shape.slice(1).reduce((a, b) => a * b, 1);
    const out = new Float32Array(indices.length * per);
    indices.forEach((i, b) => {
      if (i < 0 || i >= this.length) throw new RangeError(`latent cache: index ${i} outside [0, ${this.length})`);
      out.set(this.data.subarray(i * per, (i + 1) * per), b * per);
    });
    return T.tensor(out, [indices.length, ...this.shape.slice(1)]);
  }
}

/** A cheap fingerprint of a module's weights (FNV-1a over a strided sample of every tensor's bits). */
export function weightsFingerprint(m: { stateDict(): Map<string, T.Tensor> }): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const [k, t] of m.stateDict()) {
    for (const ch of k) mix(ch.charCodeAt(0));
    const d = T.contiguousData(T.cast(t, 'float32')) as Float32Array;
    const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
    const step = Math.max(1, Math.floor(bits.length / 64));
    for (let i = 0; i < bits.length; i += step) mix(bits[i]);
    mix(bits.length);
  }
  return h.toString(16);
}

/**
 * Encode `ds` (or reuse `file` when it holds this first stage's latents of a set this size). Data-parallel
 * ranks encode every size-th block of examples and exchange them (an all-reduce sum over zero-filled
 * buffers, exact); a cached file is reused only when every rank can read it. Only rank 0 writes.
 */
export function encodeLatentCache(model: LatentDiffusion, ds: Dataset, o: { file?: string; batchSize?: number; say?: (s: string) => void; quiet?: boolean; shard?: Shard }): LatentCache {
  const fp = weightsFingerprint(model.first_stage_model);
  const rank = o.shard?.pg.rank ?? 0, size = o.shard?.pg.size ?? 1;
  const saved = o.file && existsSync(o.file) ? readSafetensors(o.file) : null;
  const t = saved?.tensors.get('moments');
  const fits = !!t && saved!.metadata.fingerprint === fp && t.shape[0] === ds.length;
  if (size > 1 ? o.shard!.sum([fits ? 1 : 0])[0] === size : fits) {
    o.say?.(`latent cache: reusing ${o.file} (${ds.length} examples)`);
    return new LatentCache(T.contiguousData(t!) as Float32Array, [...t!.shape], saved!.metadata.gaussian === 'true');
  }
  const bs = o.batchSize ?? 64;
  const t0 = Date.now();
  const per = ds.channels * ds.size * ds.size;
  const encode = (start: number, n: number): { m: Float32Array; shape: number[]; gaussian: boolean } => {
    const img = new Float32Array(n * per);
    for (let b = 0; b < n; b++) img.set(ds.get(start + b).image, b * per);
    let out!: { m: Float32Array; shape: number[]; gaussian: boolean };
    T.noGrad(() => T.tidy(() => {
      const enc = model.encodeFirstStage(T.tensor(img, [n, ds.channels, ds.size, ds.size]));
      const gaussian = enc instanceof DiagonalGaussianDistribution;
      const m = gaussian ? enc.parameters : (enc as T.Tensor);
      out = { m: (T.contiguousData(m) as Float32Array).slice(), shape: [ds.length, ...m.shape.slice(1)], gaussian };
    }));
    return out;
  };
  // The first own block tells the latent shape (a one-image probe on a rank that has no block).
  const first = rank * bs < ds.length ? encode(rank * bs, Math.min(bs, ds.length - rank * bs)) : encode(0, 1);
  const { shape, gaussian } = first;
  const data = new Float32Array(shape.reduce((a, c) => a * c, 1));
  const perLatent = data.length / ds.length;
  for (let start = rank * bs, k = 0; start < ds.length; start += bs * size, k++) {
    const n = Math.min(bs, ds.length - start);
    data.set(k === 0 ? first.m : encode(start, n).m, start * perLatent);
    if (!o.quiet && o.say && k % 20 === 0) o.say(`latent cache: ${Math.min(ds.length, (start + n) * size)}/${ds.length} encoded`);
  }
  if (size > 1) o.shard!.pg.allreduce(data, 'sum');
  const cache = new LatentCache(data, shape, gaussian);
  o.say?.(`latent cache: ${ds.length} examples encoded in ${((Date.now() - t0) / 1000).toFixed(1)} s${size > 1 ? ` over ${size} ranks` : ''} → [${shape}]${gaussian ? ' (posterior moments)' : ''}`);
  if (o.file && rank === 0) writeSafetensors(o.file, new Map([['moments', T.tensor(cache.data, shape)]]), { fingerprint: fp, gaussian: String(gaussian) });
  return cache;
}
