// Exporting a trained model's weights for shipping: the EMA weights as the model's own (`model_ema.*`
// shadows copied over `model.*` and dropped, as the reference's `ema_scope` swaps them in for sampling),
// optionally with the sub-modules' weights in half precision (F16, read back widened to float32), and keys a sampler never reads left
// out (training-only losses). The output is a plain state dict under the original key names.

import * as T from '../engine/index.js';
import { readCheckpoint } from '../io/ckpt.js';
import { floatsToHalfBytes } from '../io/half.js';
import { SAFETENSORS_DTYPE, serializeRaw, writeFileAtomic, type RawEntry } from '../io/safetensors.js';
import { emaKey } from './checkpoint.js';

export interface ExportOptions {
  /** Use the EMA shadows as the weights (error when the checkpoint has none). */
  ema?: boolean;
  /** Store the float weights of sub-modules as F16 (top-level buffers — the diffusion schedule, scale_factor — stay exact). */
  half?: boolean;
  /** Key prefixes to leave out (default: first-stage training losses). */
  drop?: string[];
}

export interface ExportReport {
  tensors: number;
  bytes: number;
  emaSwapped: number;
}

export function exportWeights(input: string, output: string, o: ExportOptions = {}): ExportReport {
  const ck = readCheckpoint(input);
  try {
    const sd = ck.stateDict;
    const drop = o.drop ?? ['first_stage_model.loss.', 'loss.'];
    const out: [string, RawEntry][] = [];
    let swapped = 0;
    for (const [key, lazy] of sd) {
      if (key.startsWith('model_ema.') || drop.some((p) => key.startsWith(p))) continue;
      let src = lazy;
      if (o.ema && key.startsWith('model.')) {
        const shadow = sd.get(emaKey(key));
        if (shadow) {
          if (shadow.shape.join() !== lazy.shape.join()) throw new Error(`${input}: EMA shadow ${emaKey(key)} [${shadow.shape}] does not match ${key} [${lazy.shape}]`);
          src = shadow;
          swapped++;
        }
      }
      const t = src.load();
      const d = T.contiguousData(t);
      const float = (t.dtype === 'float32' || t.dtype === 'float64') && key.includes('.');
      const data = o.half && float ? floatsToHalfBytes(d as Float32Array) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      const st = o.half && float ? 'F16' : SAFETENSORS_DTYPE[t.dtype];
      out.push([key, { dtype: st, shape: t.shape, data }]);
    }
    if (o.ema && swapped === 0) throw new Error(`${input}: --ema asked, but the checkpoint has no model_ema.* weights`);
    const bytes = serializeRaw(out, { format: 'pt', ...(o.ema ? { ema: 'true' } : {}), ...(ck.globalStep !== undefined ? { global_step: String(ck.globalStep) } : {}) });
    writeFileAtomic(output, bytes);
    return { tensors: out.length, bytes: bytes.byteLength, emaSwapped: swapped };
  } finally {
    ck.close();
  }
}
