// loader: reading configs and checkpoints into models.
export * from './checkpoint.js';
