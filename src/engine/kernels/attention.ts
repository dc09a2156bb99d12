// Reference scaled-dot-product attention, flash-attention style: queries are processed in row blocks,
// keys/values in column blocks, with an online softmax, so at most one Br × Bc tile of the Lq × Lk score
// matrix exists at a time. The forward saves only the per-row log-sum-exp; the backward recomputes the
// probabilities tile by tile from it.
//
// Layouts (contiguous; Float32Array or Float64Array, one dtype per call; outputs overwritten):
//   q [B, Lq, D], k [B, Lk, D], v [B, Lk, Dv], out / gout [B, Lq, Dv], lse [B·Lq],
//   gq [B, Lq, D], gk [B, Lk, D], gv [B, Lk, Dv].
//   With H > 1 heads, B = batch · H entries in the heads-interleaved layout of a multi-head projection:
//   q [batch, Lq, H·D] (entry b = n·H + h is columns h·D … of batch n's rows), likewise k, v, out and the
//   gradients; lse stays [B·Lq].
//   out[b, i] = Σ_j softmax_j(scale · q[b, i]·k[b, j]) v[b, j];  lse[b·Lq + i] = log Σ_j exp(scale · q[b, i]·k[b, j]).

import type { FloatArray } from '../dtype.js';

/** Entry b's first element and row stride in a heads-interleaved [batch, L, H·width] buffer. */
function headRows(b: number, H: number, L: number, width: number): [number, number] {
  return [Math.floor(b / H) * L * H * width + (b % H) * width, H * width];
}

let tileRows = 32;
let tileCols = 64;

/** Tile sizes (query rows × key columns); tests shrink them to exercise ragged tiles. Returns the old ones. */
export function setAttentionTiles(rows: number, cols: number): [number, number] {
  const old: [number, number] = [tileRows, tileCols];
  tileRows = Math.max(1, Math.floor(rows));
  tileCols = Math.max(1, Math.floor(cols));
  return old;
}

export const tsAttention = {
  /** out = softmax(q kᵀ · scale) v per batch, and lse = the row-wise log-sum-exp of q kᵀ · scale. */
  attentionForward(
    q: FloatArray, k: FloatArray, v: FloatArray, B: number, Lq: number, Lk: number, D: number, Dv: number,
    scale: number, out: FloatArray, lse: FloatArray, H = 1,
  ): void {
    const Br = tileRows, Bc = tileCols;
    const S = new Float64Array(Br * Bc);
    const m = new Float64Array(Br), l = new Float64Array(Br);
    const acc = new Float64Array(Br * Dv);
    for (let b = 0; b < B; b++) {
      const [qb, qs] = headRows(b, H, Lq, D), [kb, ks] = headRows(b, H, Lk, D), [vb, vs] = headRows(b, H, Lk, Dv), [ob, os] = headRows(b, H, Lq, Dv);
      for (let i0 = 0; i0 < Lq; i0 += Br) {
        const rows = Math.min(Br, Lq - i0);
        m.fill(-Infinity);
        l.fill(0);
        acc.fill(0);
        for (let j0 = 0; j0 < Lk; j0 += Bc) {
          const cols = Math.min(Bc, Lk - j0);
          // Score tile S = scale · q[i0:i0+rows] · k[j0:j0+cols]ᵀ.
          for (let r = 0; r < rows; r++) {
            const qi = qb + (i0 + r) * qs;
            for (let c = 0; c < cols; c++) {
              const kj = kb + (j0 + c) * ks;
              let s = 0;
              for (let d = 0; d < D; d++) s += q[qi + d] * k[kj + d];
              S[r * Bc + c] = s * scale;
            }
          }
          // Online softmax: rescale the running sums to the new row maximum, then add this tile.
          for (let r = 0; r < rows; r++) {
            let mx = m[r];
            for (let c = 0; c < cols; c++) if (S[r * Bc + c] > mx) mx = S[r * Bc + c];
            if (mx === -Infinity) continue;
            const corr = Math.exp(m[r] - mx);
            const ar = r * Dv;
            if (corr !== 1) {
              l[r] *= corr;
              for (let e = 0; e < Dv; e++) acc[ar + e] *= corr;
            }
            for (let c = 0; c < cols; c++) {
              const p = Math.exp(S[r * Bc + c] - mx);
              l[r] += p;
              const vj = vb + (j0 + c) * vs;
              for (let e = 0; e < Dv; e++) acc[ar + e] += p * v[vj + e];
            }
            m[r] = mx;
          }
        }
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const inv = 1 / l[r];
          const oi = ob + i * os;
          for (let e = 0; e < Dv; e++) out[oi + e] = acc[r * Dv + e] * inv;
          lse[b * Lq + i] = m[r] + Math.log(l[r]);
        }
      }
    }
  },

  /**
   * Gradients of attentionForward from its saved out and lse: with P = exp(scale · q kᵀ − lse) recomputed
   * per tile, gv = Pᵀ gout, dP = gout vᵀ, dS = P ∘ (dP − rowsum(gout ∘ out)), gq = scale · dS k, gk = scale · dSᵀ q.
   */
  attentionBackward(
    q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, gout: FloatArray, lse: FloatArray,
    B: number, Lq: number, Lk: number, D: number, Dv: number, scale: number,
    gq: FloatArray, gk: FloatArray, gv: FloatArray, H = 1,
  ): void {
    const Br = tileRows, Bc = tileCols;
    const gk64 = new Float64Array(Lk * D), gv64 = new Float64Array(Lk * Dv);
    const gq64 = new Float64Array(Br * D);
    const delta = new Float64Array(Br);
    const P = new Float64Array(Br * Bc);
    for (let b = 0; b < B; b++) {
      const [qb, qs] = headRows(b, H, Lq, D), [kb, ks] = headRows(b, H, Lk, D), [vb, vs] = headRows(b, H, Lk, Dv), [ob, os] = headRows(b, H, Lq, Dv);
      gk64.fill(0);
      gv64.fill(0);
      for (let i0 = 0; i0 < Lq; i0 += Br) {
        const rows = Math.min(Br, Lq - i0);
        gq64.fill(0);
        for (let r = 0; r < rows; r++) {
          const oi = ob + (i0 + r) * os;
          let s = 0;
          for (let e = 0; e < Dv; e++) s += gout[oi + e] * out[oi + e];
          delta[r] = s;
        }
        for (let j0 = 0; j0 < Lk; j0 += Bc) {
          const cols = Math.min(Bc, Lk - j0);
          for (let r = 0; r < rows; r++) {
            const qi = qb + (i0 + r) * qs;
            const L = lse[b * Lq + i0 + r];
            for (let c = 0; c < cols; c++) {
              const kj = kb + (j0 + c) * ks;
              let s = 0;
              for (let d = 0; d < D; d++) s += q[qi + d] * k[kj + d];
              P[r * Bc + c] = Math.exp(s * scale - L);
            }
          }
          for (let r = 0; r < rows; r++) {
            const qi = qb + (i0 + r) * qs, oi = ob + (i0 + r) * os;
            for (let c = 0; c < cols; c++) {
              const j = j0 + c;
              const p = P[r * Bc + c];
              const vj = vb + j * vs, gvj = j * Dv;
              let dp = 0;
              for (let e = 0; e < Dv; e++) {
                const go = gout[oi + e];
                gv64[gvj + e] += p * go;
                dp += go * v[vj + e];
              }
              const ds = p * (dp - delta[r]) * scale;
              if (ds === 0) continue;
              const kj = kb + j * ks, gkj = j * D, gqr = r * D;
              for (let d = 0; d < D; d++) {
                gq64[gqr + d] += ds * k[kj + d];
                gk64[gkj + d] += ds * q[qi + d];
              }
            }
          }
        }
        for (let r = 0; r < rows; r++) {
          const gi = qb + (i0 + r) * qs;
          for (let d = 0; d < D; d++) gq[gi + d] = gq64[r * D + d];
        }
      }
      for (let j = 0; j < Lk; j++) {
        for (let d = 0; d < D; d++) gk[kb + j * ks + d] = gk64[j * D + d];
        for (let e = 0; e < Dv; e++) gv[vb + j * vs + e] = gv64[j * Dv + e];
      }
    }
  },
};

export type AttentionKernels = typeof tsAttention;
