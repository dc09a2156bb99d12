// Metrics: image quality (PSNR, SSIM, LPIPS), FID and improved precision / recall in a pluggable feature
// space (the FID Inception-v3, or the small MNIST classifier), class-conditional accuracy, and the
// evaluations `ldm eval` runs.
export * from './image-quality.js';
export * from './linalg.js';
export * from './fid.js';
export * from './precision-recall.js';
export * from './feature-net.js';
export * from './inception.js';
export * from './mnist-classifier.js';
export * from './mnist.js';
export * from './images.js';
export * from './eval.js';
