// The kernel table. Ops call `K.<kernel>(...)`; K starts as the pure-TypeScript reference kernels and
// the native addon (kernels/native.ts) overrides entries it implements for float32 data. Each kernel
// group lives in its own file and is listed here once.

import { tsElementwise, type ElementwiseKernels } from './elementwise.js';
import { tsGemm, type GemmKernels } from './gemm.js';
import { tsReduce, type ReduceKernels } from './reduce.js';
import { tsConv, type ConvKernels } from './conv.js';
import { tsResample, type ResampleKernels } from './resample.js';
import { tsNorm, type NormKernels } from './norm.js';
import { tsSoftmax, type SoftmaxKernels } from './softmax.js';
import { tsAttention, type AttentionKernels } from './attention.js';
import { tsOptim, type OptimKernels } from './optim.js';

export type Kernels = ElementwiseKernels & GemmKernels & ReduceKernels
  & ConvKernels & ResampleKernels & NormKernels & SoftmaxKernels & AttentionKernels & OptimKernels;

/** The reference kernels: the ground truth that faster kernels are tested against. */
export const tsKernels: Readonly<Kernels> = Object.freeze({
  ...tsElementwise, ...tsGemm, ...tsReduce, ...tsConv, ...tsResample, ...tsNorm, ...tsSoftmax, ...tsAttention, ...tsOptim,
});

/** The active kernels (mutated in place by the backend loader). */
export const K: Kernels = { ...tsKernels };

let active = 'ts';
export function backendName(): string {
  return active;
}

/** Install faster implementations of some kernels (they must handle or forward every dtype they get). */
export function installKernels(name: string, overrides: Partial<Kernels>): void {
  Object.assign(K, overrides);
  active = name;
}

/** Back to the reference kernels (tests compare the two). */
export function useReferenceKernels(): void {
  Object.assign(K, tsKernels);
  active = 'ts';
}
