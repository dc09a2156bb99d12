// How much memory a sampling run needs, estimated from the model's structure (a shape-only build is
// enough) before anything is allocated, so that a size or batch the machine cannot hold is refused with
// the figure instead of failing deep inside a kernel (or swapping for an hour).
//
// The estimate, in float32 elements × 4 bytes (attention is the memory-bounded fused kernel, so nothing
// is quadratic in the number of pixels):
//   weights      every parameter and buffer of the model
//   UNet         per image of the denoised batch (twice the images under classifier-free guidance): the
//                skip connections of all input blocks (kept until the output blocks use them) plus the
//                working set of the busiest level — 8 × C·h·w for a residual block (its input, the
//                concatenated skip, normalisations, convolution outputs), 30 × C·h·w where a transformer
//                runs (q, k, v, the attention output and the GEGLU feed-forward's 8·C-wide projection)
//   first stage  per image of the batch: 6 × (C_in + C_out)·H·W at the busiest level of the decoder (and
//                of the encoder for image inputs)
//   kept         the latents, x_T and the 8-bit images of the whole request
//   runtime      Node itself and the code (RUNTIME_BYTES), and the engine's buffer pool at its bound
//                (LDM_POOL_MB, default 512 MB), which holds freed buffers for reuse
//   packs        the weight cache's budget (LDM_WEIGHT_CACHE_MB, default 0), at most PACK_RATIO × the weights:
//                Winograd's transformed kernels kept from step to step (engine/weight-cache.ts)
// The run needs runtime + weights + packs + the larger of UNet and first stage + kept; measured against the peak
// resident memory of the embedded MNIST model (32×32 ×64 images, 512×512), it errs high, within a factor
// of two. It is compared with the machine's memory (os.totalmem()) or LDM_MEMORY_MB when set; one tensor
// may also not exceed the largest typed array the runtime can allocate.

import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { poolStats, weightCacheBudget } from '../engine/index.js';
import type { DDConfig } from '../models/autoencoder/model.js';
import { TaskInputError, type TaskInput } from './errors.js';

export interface MemoryRequest {
  /** Images denoised at once, and whether guidance doubles the UNet's batch. */
  batch: number;
  guided: boolean;
  /** All images of the request (their latents and pictures are kept). */
  total: number;
  /** Output size in pixels. */
  H: number;
  W: number;
  /** Whether a picture is encoded by the first stage (img2img, inpainting). */
  encodes: boolean;
  /** Tiled super-resolution: the UNet and the decoder see windows of this many latent pixels. */
  window?: number;
  /** The weight cache's budget in bytes (default T.weightCacheBudget()). */
  packs?: number;
}

export interface MemoryEstimate {
  bytes: number;
  weights: number;
  /** Node, the code and the buffer pool at its bound. */
  runtime: number;
  /** Packed weights the sampler may keep (the weight cache's budget, or what the weights can need). */
  packs: number;
  unet: number;
  firstStage: number;
  kept: number;
  /** The largest single tensor, in bytes. */
  largest: number;
}

const F32 = 4;
/** Packs are at most ~4.1× the weights they transform (F(4×4, 3×3) keeps 36 values per 9 taps, rows rounded up). */
const PACK_RATIO = 4.1;
/** Node and the loaded code, before any tensor (measured: about 150 MB under tsx). */
export const RUNTIME_BYTES = 200 * 2 ** 20;

function unetElements(model: LatentDiffusion, h: number, w: number): { total: number; largest: number } {
  const cfg = model.model.diffusion_model.config;
  const mult = cfg.channel_mult ?? [1, 2, 4, 8];
  const mc = cfg.model_channels, nr = cfg.num_res_blocks;
  const attn = new Set(cfg.attention_resolutions);
  let skips = mc * h * w, work = 0, largest = 0;
  for (let l = 0; l < mult.length; l++) {
    const C = mc * mult[l], P = Math.ceil(h / 2 ** l) * Math.ceil(w / 2 ** l);
    skips += nr * C * P + (l < mult.length - 1 ? C * Math.ceil(P / 4) : 0);
    const k = attn.has(2 ** l) ? 30 : 8;
    work = Math.max(work, k * C * P);
    largest = Math.max(largest, (attn.has(2 ** l) ? 8 : 2) * C * P);
  }
  return { total: skips + work, largest };
}

function firstStageElements(model: LatentDiffusion, H: number, W: number): { total: number; largest: number } {
  const dd = (model.first_stage_model as unknown as { _ddconfig?: DDConfig })._ddconfig;
  if (!dd) return { total: 4 * 3 * H * W, largest: 3 * H * W };
  let total = 0, largest = 0;
  for (let i = 0; i < dd.ch_mult.length; i++) {
    const P = Math.ceil(H / 2 ** i) * Math.ceil(W / 2 ** i);
    const cin = dd.ch * dd.ch_mult[Math.min(i + 1, dd.ch_mult.length - 1)], cout = dd.ch * dd.ch_mult[i];
    total = Math.max(total, 6 * (cin + cout) * P);
    largest = Math.max(largest, Math.max(cin, cout) * P);
  }
  return { total, largest };
}

/** Bytes of every parameter and buffer (float32). */
export function weightBytes(model: LatentDiffusion): number {
  let n = 0;
  for (const [, p] of model.stateDict()) n += p.size;
  return n * F32;
}

export function estimateSamplingMemory(model: LatentDiffusion, r: MemoryRequest, weights = weightBytes(model)): MemoryEstimate {
  const f = model.firstStageFactor;
  const C = model.config.channels;
  const h = r.H / f, w = r.W / f;
  const win = r.window;
  const uh = win ? Math.min(h, win) : h, uw = win ? Math.min(w, win) : w;
  const ub = r.batch * (r.guided ? 2 : 1);
  const u = unetElements(model, uh, uw);
  const dH = win ? Math.min(r.H, win * f) : r.H, dW = win ? Math.min(r.W, win * f) : r.W;
  const d = firstStageElements(model, dH, dW);
  // tiled: the whole latent and the output are also assembled in full, a few times over
  const fold = win ? 4 * ub * C * h * w + 4 * r.batch * 3 * r.H * r.W : 0;
  const unet = (ub * u.total + fold) * F32;
  const firstStage = r.batch * d.total * F32 * (r.encodes ? 2 : 1);
  const kept = r.total * (2 * C * h * w * F32 + 3 * r.H * r.W);
  const largest = Math.max(ub * u.largest, r.batch * d.largest, r.total * C * h * w) * F32;
  const runtime = RUNTIME_BYTES + poolStats().limitBytes;
  const packs = Math.min(r.packs ?? weightCacheBudget(), PACK_RATIO * weights);
  return { bytes: runtime + weights + packs + Math.max(unet, firstStage) + kept, weights, runtime, packs, unet, firstStage, kept, largest };
}

/** The memory a run may use: LDM_MEMORY_MB when set, else all of the machine's. */
export function memoryBound(): { bytes: number; what: string } {
  const env = process.env.LDM_MEMORY_MB;
  if (env !== undefined && env.trim() !== '') {
    const mb = Number(env);
    if (!(mb > 0)) throw new RangeError(`LDM_MEMORY_MB must be a positive number of megabytes, got "${env}"`);
    return { bytes: mb * 2 ** 20, what: `LDM_MEMORY_MB = ${env}` };
  }
  return { bytes: totalmem(), what: "this machine's memory" };
}

export function formatBytes(b: number): string {
  if (b >= 2 ** 40) return `${(b / 2 ** 40).toFixed(1)} TiB`;
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  return `${(b / 2 ** 20).toFixed(0)} MiB`;
}

function breakdown(e: MemoryEstimate): string {
  const run = e.unet >= e.firstStage ? `UNet ${formatBytes(e.unet)}` : `first stage ${formatBytes(e.firstStage)}`;
  const packs = e.packs > 0 ? `, packed weights ${formatBytes(e.packs)}` : '';
  return `weights ${formatBytes(e.weights)}${packs}, ${run}, results ${formatBytes(e.kept)}, runtime and buffer pool ${formatBytes(e.runtime)}`;
}

/**
 * Refuse a run the estimate says will not fit: blamed on the image size when one image alone does not
 * fit, on the number of images when their results alone do not, else on how many are denoised at once
 * (with the batch size that fits).
 */
export function checkMemory(model: LatentDiffusion, r: MemoryRequest, inputs: { n: TaskInput; batch: TaskInput }): MemoryEstimate {
  const weights = weightBytes(model);
  const bound = memoryBound();
  const maxTensor = constants.MAX_LENGTH;
  const fits = (e: MemoryEstimate) => e.bytes <= bound.bytes && e.largest <= maxTensor;
  const over = (e: MemoryEstimate) => e.bytes > bound.bytes
    ? `about ${formatBytes(e.bytes)} (estimate: ${breakdown(e)}), more than ${bound.what} (${formatBytes(bound.bytes)})`
    : `a ${formatBytes(e.largest)} tensor, more than the ${formatBytes(maxTensor)} this runtime can allocate at once`;
  const size = `${r.W}×${r.H}`;
  const one = estimateSamplingMemory(model, { ...r, batch: 1, total: 1 }, weights);
  if (!fits(one)) throw new TaskInputError(r.H >= r.W ? 'H' : 'W', `one ${size} image needs ${over(one)}; choose a smaller size`);
  const serial = estimateSamplingMemory(model, { ...r, batch: 1 }, weights);
  if (!fits(serial)) throw new TaskInputError(inputs.n, `${r.total} images of ${size} need ${over(serial)} even one at a time; ask for fewer`);
  const e = estimateSamplingMemory(model, r, weights);
  if (!fits(e)) {
    let fit = r.batch;
    while (fit > 1 && !fits(estimateSamplingMemory(model, { ...r, batch: fit }, weights))) fit = Math.floor(fit / 2);
    throw new TaskInputError(inputs.batch, `denoising ${r.batch} images of ${size} at once needs ${over(e)}; a batch size of ${fit} fits (the same images, ${fit} at a time)`);
  }
  return e;
}
