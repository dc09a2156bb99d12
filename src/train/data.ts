// The `data:` section of a training config → datasets and the training loader.

import { ConfigError } from '../io/config.js';
import { DataLoader, MNIST, splitDataset, type Dataset } from '../data/index.js';
import { getPath, type Doc } from './config.js';

export interface TrainingData {
  batchSize: number;
  train: Dataset;
  validation: Dataset | null;
  /** Whether the training set draws random augmentation (then latents cannot be cached). */
  augment: boolean;
}

export function openTrainingData(doc: Doc, seed: number): TrainingData {
  const d = getPath(doc, 'data.params') as Doc | undefined;
  if (!d || typeof d !== 'object') throw new ConfigError('data.params: missing (expected batch_size, train, validation)');
  const bs = d.batch_size;
  if (typeof bs !== 'number' || !Number.isInteger(bs) || bs < 1) throw new ConfigError(`data.params.batch_size: expected a positive integer, got ${JSON.stringify(bs)}`);
  const build = (key: 'train' | 'validation'): Dataset | null => {
    const n = d[key] as Doc | undefined;
    if (!n) return null;
    const target = String(n.target ?? '');
    const p = (n.params ?? {}) as Doc;
    if (!/MNIST/.test(target)) throw new ConfigError(`data.params.${key}.target: unknown dataset ${target}`);
    const full = new MNIST({ size: (p.size as number) ?? 32, channels: ((p.channels as number) ?? 1) as 1 | 3 });
    const held = (p.held_out as number) ?? 1000;
    const s = splitDataset(full, { heldOut: held, seed: (p.split_seed as number) ?? 0 });
    return /Validation|Test/.test(target) ? s.heldOut : s.train;
  };
  const train = build('train');
  if (!train) throw new ConfigError('data.params.train: missing');
  void seed;
  return { batchSize: bs, train, validation: build('validation'), augment: false };
}

export function trainLoader(data: TrainingData, seed: number): DataLoader {
  return new DataLoader(data.train, { batchSize: data.batchSize, seed, shuffle: true, augment: data.augment, dropLast: true });
}
