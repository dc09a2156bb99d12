// The `data:` section of a training config → datasets (src/data/config.ts) and the training loader.

import { DataLoader, type Dataset } from '../data/index.js';
import { parseDataConfig } from '../data/config.js';
import type { Doc } from './config.js';

export interface TrainingData {
  batchSize: number;
  train: Dataset;
  validation: Dataset | null;
  /** Whether the training set draws random augmentation (then latents cannot be cached). */
  augment: boolean;
}

export function openTrainingData(doc: Doc, source = 'config'): TrainingData {
  const d = parseDataConfig(doc, source);
  return { batchSize: d.batchSize, train: d.train, validation: d.validation, augment: d.train.augments ?? false };
}

/**
 * The training loader: a new seeded order every epoch, incomplete last batches dropped (equal batch sizes).
 * With several ranks it walks the global batch (batch_size per rank × ranks) on every rank and assembles only
 * this rank's rows of it.
 */
export function trainLoader(data: TrainingData, seed: number, shard: { rank: number; size: number } = { rank: 0, size: 1 }): DataLoader {
  const global = data.batchSize * shard.size;
  if (data.train.length < global) throw new Error(`data.params.batch_size ${data.batchSize}${shard.size > 1 ? ` × ${shard.size} ranks` : ''} exceeds the ${data.train.length} training examples`);
  return new DataLoader(data.train, { batchSize: global, seed, shuffle: true, augment: data.augment, dropLast: true, shard });
}
