// nn: modules with state-dict names, layers, optimizers.
export * from './module.js';
export * from './layers.js';
export * from './optim.js';
export * as init from './init.js';
export * from './build.js';
