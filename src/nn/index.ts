// nn: modules with state-dict names, layers, optimizers.
export * from './module.js';
