// Classifier-free guidance (Ho & Salimans 2022) as the reference samplers batch it: one model call on
// x_in = [x, x], c_in = [uncond, cond] (unconditional FIRST), then ε = ε_u + s·(ε_c − ε_u).
// Unlike the reference, dict conditionings (hybrid: c_concat + c_crossattn) are supported too, by
// concatenating every entry along the batch axis.

import * as T from '../engine/index.js';
import type { EpsFn } from './samplers/types.js';

/** What LatentDiffusion.apply_model accepts: a tensor, or the dict form with lists per key. */
export type Conditioning = T.Tensor | CondDict | null;
export interface CondDict {
  c_concat?: T.Tensor[];
  c_crossattn?: T.Tensor[];
}

/** The denoiser with its conditioning: (x [B,…], t, cond with batch B) → ε [B,…]. */
export type CondEpsFn = (x: T.Tensor, t: number, cond: Conditioning) => T.Tensor;

function batchOf(c: Conditioning): number | null {
  if (c === null) return null;
  if (c instanceof T.Tensor) return c.shape[0];
  const first = c.c_concat?.[0] ?? c.c_crossattn?.[0];
  return first ? first.shape[0] : null;
}

/** [a; b] along the batch axis, entry by entry. */
export function concatConditioning(a: Conditioning, b: Conditioning): Conditioning {
  if (a === null || b === null) {
    if (a === null && b === null) return null;
    throw new Error('guidance: one of the conditional/unconditional conditionings is missing');
  }
  if (a instanceof T.Tensor && b instanceof T.Tensor) return T.concat([a, b], 0);
  if (a instanceof T.Tensor || b instanceof T.Tensor) throw new Error('guidance: conditional and unconditional conditionings have different forms (tensor vs dict)');
  const out: CondDict = {};
  for (const key of ['c_concat', 'c_crossattn'] as const) {
    const la = a[key], lb = b[key];
    if (!la && !lb) continue;
    if (!la || !lb || la.length !== lb.length) throw new Error(`guidance: ${key} lists differ between conditional and unconditional inputs`);
    out[key] = la.map((t, i) => T.concat([t, lb[i]], 0));
  }
  return out;
}

/**
 * The guided ε function. With scale 1 or no unconditional conditioning this is the plain conditional
 * model (one batch); otherwise one doubled batch per call.
 */
export function guidedEps(model: CondEpsFn, cond: Conditioning, uncond: Conditioning | undefined, scale: number): EpsFn {
  if (uncond === undefined || uncond === null || scale === 1) return (x, t) => model(x, t, cond);
  const bc = batchOf(cond), bu = batchOf(uncond);
  if (bc !== null && bu !== null && bc !== bu) throw new Error(`guidance: conditional batch ${bc} and unconditional batch ${bu} differ`);
  const cIn = keepAll(concatConditioning(uncond, cond));
  return (x, t) => {
    const out = model(T.concat([x, x], 0), t, cIn);
    const [eU, eC] = T.chunk(out, 2, 0);
    return T.add(eU, T.mul(T.sub(eC, eU), scale));
  };
}

/** Exempt a conditioning's tensors from the caller's memory scope (they live as long as the ε function). */
function keepAll(c: Conditioning): Conditioning {
  if (c instanceof T.Tensor) return T.keep(c);
  if (c) for (const l of [c.c_concat, c.c_crossattn]) l?.forEach((t) => T.keep(t));
  return c;
}
