// The engine's public surface: tensors, autograd, memory scopes, random numbers and every op.

import { backward, installAutogradOps, type BackwardOptions } from './autograd.js';
import { add } from './ops/elementwise.js';
import { onesLike } from './ops/create.js';
import { sumTo } from './ops/reduce.js';
import { Tensor } from './tensor.js';

installAutogradOps({ add: (a, b) => add(a, b), sumTo, onesLike });

export { Tensor, Storage, tidy, keep, trackedCount } from './tensor.js';
export { clearPool, poolStats } from './pool.js';
export { WeightCache, withWeightCache, weightCacheStats, weightCacheBudget, setWeightCacheBudget, type WeightCacheStats } from './weight-cache.js';
export { backward, noGrad, enableGrad, isGradEnabled, requireGrad, record, needsGrad, withGradReadyHook } from './autograd.js';
export { Generator, defaultGenerator, manualSeed } from './random.js';
export * from './dtype.js';
export * from './shape.js';
export * from './ops/create.js';
export * from './ops/elementwise.js';
export * from './ops/shape.js';
export * from './ops/reduce.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export { K, tsKernels, backendName, installKernels, useReferenceKernels } from './kernels/index.js';
import './methods.js';
import './kernels/native.js';

declare module './tensor.js' {
  interface Tensor {
    backward(opts?: BackwardOptions | Tensor): void;
  }
}
Tensor.prototype.backward = function (this: Tensor, opts?: BackwardOptions | Tensor) {
  backward(this, opts instanceof Tensor ? { grad: opts } : opts);
};
