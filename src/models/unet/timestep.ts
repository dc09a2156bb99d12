// Sinusoidal timestep embedding of the denoising UNet (util.timestep_embedding in the reference).
//
//   half = dim // 2;  freq_i = exp(−ln(max_period) · i / half),  i = 0 … half−1
//   emb  = [cos(t·freq), sin(t·freq)]            (cos first; denominator half, not half − 1)
//   odd dim → one zero column appended.
// The reference computes freqs, t·freq, cos and sin in float32; every step here is rounded to float32
// the same way (Math.fround), so the embedding matches bit for bit up to libm differences.

import * as T from '../../engine/index.js';

/** timesteps: [N] (int or float, may be fractional) → [N, dim] float32. */
export function timestepEmbedding(timesteps: T.Tensor, dim: number, maxPeriod = 10000): T.Tensor {
  if (timesteps.ndim !== 1) throw new RangeError(`timestepEmbedding: timesteps must be 1-D [N], got [${timesteps.shape}]`);
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`timestepEmbedding: dim must be a positive integer, got ${dim}`);
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const negLog = f(-Math.log(maxPeriod));
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(Math.exp(f(f(negLog * i) / half)));
  const ts = timesteps.toArray();
  const n = ts.length;
  const out = new Float32Array(n * dim);
  for (let b = 0; b < n; b++) {
    const t = f(ts[b]);
    const row = b * dim;
    for (let i = 0; i < half; i++) {
      const a = f(t * freqs[i]);
      out[row + i] = Math.cos(a);
      out[row + half + i] = Math.sin(a);
    }
    // odd dim: the last column stays 0 (zero padding)
  }
  return T.tensor(out, [n, dim]);
}
