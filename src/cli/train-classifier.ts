// `ldm train-classifier`: train (or reuse) the small MNIST classifier whose features `ldm eval --features mnist`
// measures FID / precision / recall in, and whose predictions give the class accuracy of samples.

import * as M from '../metrics/index.js';
import { formatOptions, num, one, parseArgs, UsageError, type OptionSpec } from './args.js';

const OPTIONS: OptionSpec[] = [
  { name: 'out', value: 'DIR', default: '$LDM_CACHE_DIR or ~/.cache/ldm-ts, /mnist-classifier', help: `folder for ${M.CLASSIFIER_WEIGHTS} and ${M.CLASSIFIER_INFO}` },
  { name: 'epochs', value: 'N', default: M.CLASSIFIER_DEFAULTS.epochs, help: 'passes over the training digits' },
  { name: 'batch', value: 'N', default: M.CLASSIFIER_DEFAULTS.batchSize, help: 'batch size' },
  { name: 'lr', value: 'LR', default: M.CLASSIFIER_DEFAULTS.lr, help: 'Adam learning rate (decayed linearly to 0 over the run)' },
  { name: 'seed', value: 'N', default: 0, help: 'seed of the initial weights, the order and the augmentation' },
  { name: 'held-out', value: 'N', default: M.MNIST_HELD_OUT, help: 'MNIST digits held out (the accuracy is measured on them)' },
  { name: 'split-seed', value: 'N', default: M.MNIST_SPLIT_SEED, help: 'seed of the train / held-out split' },
  { name: 'limit', value: 'N', help: 'train on a random N of the training digits (quick runs)' },
  { name: 'force', flag: true, help: 'retrain even when a classifier for this split is cached in --out' },
  { name: 'help', short: 'h', flag: true, help: 'this text' },
];

export const TRAIN_CLASSIFIER_USAGE = `usage: ldm train-classifier [--out DIR] [--epochs N] [--force]
Trains the LeNet-style MNIST classifier (${M.CLASSIFIER_FEATURES}-d penultimate features) on the training split, reports its
held-out accuracy and saves it; an existing classifier for the same split is reused unless --force.
${formatOptions(OPTIONS)}`;

export function trainClassifierCommand(argv: string[]): number {
  const p = parseArgs(argv, OPTIONS);
  if (p.flags.has('help')) {
    console.log(TRAIN_CLASSIFIER_USAGE);
    return 0;
  }
  const pos = (key: string, min: number) => {
    const v = num(p, key, key === 'lr' ? 'float' : 'int');
    if (v !== undefined && !(v >= min)) throw new UsageError(`--${key} must be ≥ ${min}, got ${v}`);
    return v;
  };
  const dir = one(p, 'out') ?? M.defaultClassifierDir();
  const lr = pos('lr', 0);
  if (lr === 0) throw new UsageError('--lr must be positive');
  const r = M.ensureMnistClassifier(dir, {
    epochs: pos('epochs', 1), batchSize: pos('batch', 1), lr, seed: pos('seed', 0), limit: pos('limit', 1),
    heldOut: pos('held-out', 1), splitSeed: pos('split-seed', 0), force: p.flags.has('force'), log: (s) => console.error(s),
  });
  console.log(`${r.trained ? 'trained' : 'cached'}: ${dir} — held-out accuracy ${(100 * r.info.held_out_accuracy).toFixed(2)} % on ${r.info.held_out_examples} digits (${r.info.train_examples} training digits, ${r.info.epochs} epochs, ${r.info.train_seconds.toFixed(1)} s)`);
  return 0;
}
