// Reference GEMM: C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b], row-major, for b < batch.
// op(A) is M×K (A stored K×M with lda when transA), op(B) is K×N (B stored N×K with ldb when transB).
// A batch stride of 0 broadcasts that operand over the batch.

import type { FloatArray } from '../dtype.js';

export interface GemmArgs {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  A: FloatArray;
  aOffset: number;
  lda: number;
  strideA: number;
  B: FloatArray;
  bOffset: number;
  ldb: number;
  strideB: number;
  beta: number;
  C: FloatArray;
  cOffset: number;
  ldc: number;
  strideC: number;
  batch: number;
  /** N values added to every row of C (needs beta 0 and a C per batch entry): a linear layer's bias. */
  bias?: FloatArray | null;
  /**
   * op(B) packed beforehand by gemmPackB for this K and N (B shared by the batch, strideB 0): kernels that pack
   * B read it instead (the reference kernel, which packs nothing, ignores it).
   */
  packedB?: Float32Array | null;
}

export const tsGemm = {
  gemm(g: GemmArgs): void {
    const { transA, transB, M, N, K, alpha, A, B, C, lda, ldb, ldc, beta, bias } = g;
    if (bias && (beta !== 0 || (g.strideC === 0 && g.batch > 1))) throw new RangeError('gemm: a bias needs beta 0 and one C per batch entry');
    // op(B) is packed once per batch entry into a dense K×N panel so the inner loop is unit-stride;
    // rows of C accumulate in float64, four k at a time.
    const Bp = new Float64Array(K * N);
    const acc = new Float64Array(N);
    let packedFrom = -1;
    for (let bt = 0; bt < g.batch; bt++) {
      const a0 = g.aOffset + bt * g.strideA;
      const b0 = g.bOffset + bt * g.strideB;
      const c0 = g.cOffset + bt * g.strideC;
      if (b0 !== packedFrom) {
        for (let k = 0; k < K; k++) {
          for (let n = 0; n < N; n++) Bp[k * N + n] = transB ? B[b0 + n * ldb + k] : B[b0 + k * ldb + n];
        }
        packedFrom = b0;
      }
      for (let m = 0; m < M; m++) {
        acc.fill(0);
        const ar = transA ? a0 + m : a0 + m * lda;
        const as = transA ? lda : 1;
        let k = 0;
        for (; k + 3 < K; k += 4) {
          const v0 = A[ar + k * as], v1 = A[ar + (k + 1) * as], v2 = A[ar + (k + 2) * as], v3 = A[ar + (k + 3) * as];
          const r0 = k * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
          for (let n = 0; n < N; n++) acc[n] += v0 * Bp[r0 + n] + v1 * Bp[r1 + n] + v2 * Bp[r2 + n] + v3 * Bp[r3 + n];
        }
        for (; k < K; k++) {
          const v = A[ar + k * as], r = k * N;
          for (let n = 0; n < N; n++) acc[n] += v * Bp[r + n];
        }
        const crow = c0 + m * ldc;
        if (bias) for (let n = 0; n < N; n++) C[crow + n] = alpha * acc[n] + bias[n];
        else if (beta === 0) for (let n = 0; n < N; n++) C[crow + n] = alpha * acc[n];
        else for (let n = 0; n < N; n++) C[crow + n] = alpha * acc[n] + beta * C[crow + n];
      }
    }
  },

  /** Size (floats) and layout tag of gemmPackB's pack of a K × N op(B), or null where these kernels pack nothing. */
  gemmPackInfo(K: number, N: number): { floats: number; layout: number } | null {
    void K, N;
    return null;
  },

  /** Writes op(B)'s pack (B at bOffset, ldb, transB as in GemmArgs) into dst (gemmPackInfo(K, N).floats long). */
  gemmPackB(K: number, N: number, B: FloatArray, bOffset: number, ldb: number, transB: boolean, dst: Float32Array): void {
    void K, N, B, bOffset, ldb, transB, dst;
    throw new Error('gemmPackB: these kernels pack no GEMM operands (gemmPackInfo returned null)');
  },
};

export type GemmKernels = typeof tsGemm;
