export { conv2d, type Conv2dOptions } from './nn/conv.js';
export { upsampleNearest, avgPool2d, interpolateBilinear } from './nn/resample.js';
