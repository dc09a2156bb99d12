// Sampling tasks on a LatentDiffusion model.
export * from './common.js';
export * from './unconditional.js';
export * from './class-conditional.js';
export * from './text-to-image.js';
export * from './inpainting.js';
export * from './text-inpainting.js';
export * from './mask.js';
export * from './super-resolution.js';
export * from './semantic.js';
export * from './img2img.js';
export * from './errors.js';
export * from './defaults.js';
export * from './generate.js';
export * from './memory.js';
