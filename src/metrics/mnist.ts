// The MNIST side of the metrics: the train / held-out split the classifier and the FID floor use, and the
// cached classifier (trained once, reused while the split it was trained on is the same).

import { homedir } from 'node:os';
import path from 'node:path';
import { MNIST, splitDataset, type Subset } from '../data/index.js';
import { loadClassifier, saveClassifier, trainClassifier, type ClassifierInfo, type MnistClassifier, type TrainClassifierOptions } from './mnist-classifier.js';

export const MNIST_HELD_OUT = 1000;
export const MNIST_SPLIT_SEED = 0;

export interface MnistSplitOptions {
  heldOut?: number;
  splitSeed?: number;
}

/** MNIST (1×32×32 in [-1, 1]) split into training and held-out digits (src/data's seeded split). */
export function mnistSplit(o: MnistSplitOptions = {}): { train: Subset; heldOut: Subset } {
  return splitDataset(new MNIST({ size: 32, channels: 1 }), { heldOut: o.heldOut ?? MNIST_HELD_OUT, seed: o.splitSeed ?? MNIST_SPLIT_SEED });
}

/** Where the classifier is cached unless a folder is given: $LDM_CACHE_DIR or ~/.cache/ldm-ts, then mnist-classifier/. */
export function defaultClassifierDir(): string {
  return path.join(process.env.LDM_CACHE_DIR || path.join(homedir(), '.cache', 'ldm-ts'), 'mnist-classifier');
}

function splitData(o: MnistSplitOptions): Record<string, string | number> {
  return { dataset: 'mnist', split_seed: o.splitSeed ?? MNIST_SPLIT_SEED, held_out: o.heldOut ?? MNIST_HELD_OUT };
}

/**
 * The classifier saved in `dir` when it was trained on this split (however many of its digits it used);
 * otherwise (or with `force`) train one on the split's training digits and save it there.
 */
export function ensureMnistClassifier(dir: string, o: MnistSplitOptions & TrainClassifierOptions & { force?: boolean } = {}): { net: MnistClassifier; info: ClassifierInfo; trained: boolean } {
  const data = splitData(o);
  if (!o.force) {
    const have = loadClassifier(dir);
    if (have && JSON.stringify(have.info.data) === JSON.stringify(data)) return { ...have, trained: false };
    if (have) o.log?.(`${dir}: the cached classifier was trained on another split (${JSON.stringify(have.info.data)}); retraining`);
  }
  const { train, heldOut } = mnistSplit(o);
  o.log?.(`training the MNIST classifier on ${train.length} digits (held out: ${heldOut.length}) → ${dir}`);
  const { net, info } = trainClassifier(train, heldOut, o);
  const full: ClassifierInfo = { ...info, data };
  saveClassifier(dir, net, full);
  return { net, info: full, trained: true };
}
