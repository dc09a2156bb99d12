// Neural-network ops (convolution, pooling, resampling, normalisation, softmax, attention, losses,
// embedding/indexing, dropout), one group per file in ops/nn/.
export { conv2d, type Conv2dOptions } from './nn/conv.js';
export { upsampleNearest, avgPool2d, maxPool2x2, interpolateBilinear } from './nn/resample.js';
export { groupNorm, layerNorm, batchNorm } from './nn/norm.js';
export { softmax, logSoftmax } from './nn/softmax.js';
export { attention } from './nn/attention.js';
export { mseLoss, l1Loss, type Reduction } from './nn/loss.js';
export { embedding, indexSelect, gather } from './nn/index.js';
export { dropout } from './nn/dropout.js';
