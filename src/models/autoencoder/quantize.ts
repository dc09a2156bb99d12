// VectorQuantizer2 (taming/modules/vqvae/quantize.py) as used by VQModel: legacy loss, beta 0.25.
//
//   z [B, e, H, W] → rows z_f [N = B·H·W, e] (b h w c order)
//   d[n, j] = Σ z_f[n]² + Σ E[j]² − 2 z_f[n]·E[j]     (the expanded form, as the reference computes it)
//   idx[n]  = argmin_j d[n, j]                         (first minimum on ties)
//   z_q     = E[idx]
//   loss    = mean((sg(z_q) − z)²) + β·mean((z_q − sg(z))²)     (legacy: β on the codebook term)
//   z_q     = z + sg(z_q − z)                           (straight-through) → [B, e, H, W]
// Indices come back flat [N] like the reference (or [B, H, W] with sane_index_shape).

import * as T from '../../engine/index.js';
import { Layer, Module, init } from '../../nn/index.js';
import { Builder, isMeta, param, type BuildOptions } from '../../nn/build.js';

export interface QuantizeResult {
  /** Straight-through quantized latent [B, e, H, W]. */
  quant: T.Tensor;
  /** Codebook + commitment loss (scalar). */
  loss: T.Tensor;
  /** Codebook indices (int32): [B·H·W], or [B, H, W] with sane_index_shape. */
  indices: T.Tensor;
}

/** Rows of the distance matrix computed at once (bounds memory to ROWS × n_e floats). */
const ROWS = 1024;

export class VectorQuantizer2 extends Module {
  embedding: Layer;

  constructor(
    readonly _nE: number,
    readonly _eDim: number,
    readonly _beta = 0.25,
    readonly _legacy = true,
    readonly _saneIndexShape = false,
    opts: BuildOptions = {},
  ) {
    super();
    this.embedding = new Builder(opts).embedding(_nE, _eDim);
    const w = param(this.embedding, 'weight');
    if (!isMeta(w)) init.uniform_(w, -1 / _nE, 1 / _nE, opts.gen ?? T.defaultGenerator);
  }

  get codebook(): T.Tensor {
    return param(this.embedding, 'weight');
  }

  /** Nearest codebook index of each row of zf [N, e] (expanded distance, first minimum). */
  nearest(zf: T.Tensor): T.Tensor {
    return T.noGrad(() => {
      const E = this.codebook; // [n_e, e]
      const e2 = T.sum(T.square(E), 1); // [n_e]
      const Et = T.transpose(E, 0, 1); // [e, n_e]
      const N = zf.shape[0];
      const out = new Int32Array(N);
      for (let s = 0; s < N; s += ROWS) {
        T.tidy(() => {
          const rows = T.slice(zf, 0, s, Math.min(N, s + ROWS));
          const z2 = T.sum(T.square(rows), 1, true); // [r, 1]
          const d = T.sub(T.add(z2, e2), T.mul(T.matmul(rows, Et), 2)); // [r, n_e]
          out.set(T.contiguousData(T.argmin(d, 1)) as Int32Array, s);
        });
      }
      e2.dispose();
      return T.tensor(out, [N], 'int32');
    });
  }

  forward(z: T.Tensor): QuantizeResult {
    const [B, C, H, W] = z.shape;
    if (z.ndim !== 4 || C !== this._eDim) throw new RangeError(`VectorQuantizer2: expected [B, ${this._eDim}, H, W], got [${z.shape}]`);
    const zb = T.contiguous(T.permute(z, [0, 2, 3, 1])); // [B, H, W, e]
    const zf = T.reshape(zb, [B * H * W, C]);
    const idx = this.nearest(zf);
    const zq = T.reshape(T.embedding(this.codebook, idx), [B, H, W, C]);
    const commit = T.mean(T.square(T.sub(T.detach(zq), zb)));
    const codebook = T.mean(T.square(T.sub(zq, T.detach(zb))));
    const loss = this._legacy ? T.add(commit, T.mul(codebook, this._beta)) : T.add(T.mul(commit, this._beta), codebook);
    const st = T.add(zb, T.detach(T.sub(zq, zb)));
    const quant = T.contiguous(T.permute(st, [0, 3, 1, 2]));
    return { quant, loss, indices: this._saneIndexShape ? T.reshape(idx, [B, H, W]) : idx };
  }

  /** E[indices]; with shape [B, H, W, e] the result is permuted to [B, e, H, W]. */
  getCodebookEntry(indices: T.Tensor, shape?: readonly [number, number, number, number]): T.Tensor {
    const zq = T.embedding(this.codebook, T.reshape(indices, [indices.size]));
    if (!shape) return zq;
    return T.contiguous(T.permute(T.reshape(zq, shape), [0, 3, 1, 2]));
  }
}
