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
}

export const tsGemm = {
  gemm(g: GemmArgs): void {
    const { transA, transB, M, N, K, alpha, A, B, C, lda, ldb, ldc, beta } = g;
    const acc = new Float64Array(N);
    for (let bt = 0; bt < g.batch; bt++) {
      const a0 = g.aOffset + bt * g.strideA;
      const b0 = g.bOffset + bt * g.strideB;
      const c0 = g.cOffset + bt * g.strideC;
      for (let m = 0; m < M; m++) {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const av = transA ? A[a0 + k * lda + m] : A[a0 + m * lda + k];
          if (av === 0) continue;
          if (transB) {
            for (let n = 0; n < N; n++) acc[n] += av * B[b0 + n * ldb + k];
          } else {
            const row = b0 + k * ldb;
            for (let n = 0; n < N; n++) acc[n] += av * B[row + n];
          }
        }
        const crow = c0 + m * ldc;
        if (beta === 0) for (let n = 0; n < N; n++) C[crow + n] = alpha * acc[n];
        else for (let n = 0; n < N; n++) C[crow + n] = alpha * acc[n] + beta * C[crow + n];
      }
    }
  },
};

export type GemmKernels = typeof tsGemm;
