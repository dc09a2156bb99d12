// The denoising UNet of LDM (openaimodel.py + attention.py) and its building blocks.
export * from './build.js';
export * from './timestep.js';
export * from './resblock.js';
export * from './attention.js';
export * from './transformer.js';
export * from './unet.js';
export * from './config.js';
