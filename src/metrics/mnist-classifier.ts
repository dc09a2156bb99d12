// A small LeNet-style digit classifier, trained here on the MNIST training split, used (1) as the feature
// network of MNIST FID / precision / recall (its 128-d penultimate activations, after the ReLU) and (2) to
// read the class of generated digits (class-conditional accuracy). Input: [B, 1, 32, 32] in [-1, 1]
// (MNIST padded to 32 as src/data/mnist.ts gives it; 3-channel input is reduced to its mean).
//
//   conv 5×5 (1 → 16, pad 2) → ReLU → max 2×2 → conv 5×5 (16 → 32, pad 2) → ReLU → max 2×2
//   → flatten (32·8·8) → linear 2048 → 128 → ReLU (features) → linear 128 → 10 (logits)
//
// Trained with Adam on cross-entropy (learning rate decayed linearly to 0 over the run), with random
// translations of up to 2 pixels (the padding's worth) as augmentation; the weights go to safetensors, the
// facts of the run to a JSON.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { Adam, Conv2d, Layer, Linear } from '../nn/index.js';
import { readSafetensors, writeFileAtomic, writeSafetensors } from '../io/safetensors.js';
import { valuesOf, type FeatureNet } from './feature-net.js';

export const CLASSIFIER_SIZE = 32;
export const CLASSIFIER_FEATURES = 128;
export const CLASSIFIER_WEIGHTS = 'mnist-classifier.safetensors';
export const CLASSIFIER_INFO = 'mnist-classifier.json';
const ARCH = 'lenet-16-32-128';

export const CLASSIFIER_DEFAULTS = { epochs: 8, batchSize: 32, lr: 2e-3, maxShift: 2 };

/** The examples the classifier reads: image [1 or 3, 32, 32] in [-1, 1] with its digit. */
export interface LabelledImages {
  readonly length: number;
  get(i: number): { image: Float32Array; class_label?: number };
}

export class MnistClassifier extends Layer {
  conv1: Conv2d;
  conv2: Conv2d;
  fc1: Linear;
  fc2: Linear;
  constructor(gen: T.Generator = T.defaultGenerator) {
    super();
    this.conv1 = new Conv2d(1, 16, 5, { padding: 2, gen });
    this.conv2 = new Conv2d(16, 32, 5, { padding: 2, gen });
    this.fc1 = new Linear(32 * 8 * 8, CLASSIFIER_FEATURES, true, { gen });
    this.fc2 = new Linear(CLASSIFIER_FEATURES, 10, true, { gen });
  }
  /** [B, 1|3, 32, 32] → the 128-d features [B, 128]. */
  features(x: T.Tensor): T.Tensor {
    if (x.ndim !== 4 || (x.shape[1] !== 1 && x.shape[1] !== 3) || x.shape[2] !== CLASSIFIER_SIZE || x.shape[3] !== CLASSIFIER_SIZE) {
      throw new RangeError(`MNIST classifier: expected images [B, 1 or 3, 32, 32] in [-1, 1], got [${x.shape}]`);
    }
    if (x.shape[1] === 3) x = T.mean(x, 1, true);
    let h = T.maxPool2x2(T.relu(this.conv1.forward(x)));
    h = T.maxPool2x2(T.relu(this.conv2.forward(h)));
    return T.relu(this.fc1.forward(T.reshape(h, [h.shape[0], -1])));
  }
  forward(x: T.Tensor): T.Tensor {
    return this.fc2.forward(this.features(x));
  }
}

/** Mean cross-entropy of logits [B, 10] against integer labels. */
export function crossEntropy(logits: T.Tensor, labels: Int32Array): T.Tensor {
  const idx = T.tensor(labels, [labels.length, 1], 'int32');
  return T.neg(T.mean(T.gather(T.logSoftmax(logits, 1), 1, idx)));
}

/** Images i..j of `ds` as a batch [B, 1, 32, 32] with labels; `shift` translates each image by (dy, dx) pixels, filling −1. */
function batch(ds: LabelledImages, idx: ArrayLike<number>, shift?: (k: number) => [number, number]): { x: T.Tensor; y: Int32Array } {
  const S = CLASSIFIER_SIZE, P = S * S;
  const x = new Float32Array(idx.length * P).fill(-1);
  const y = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const ex = ds.get(idx[k]);
    if (ex.class_label === undefined) throw new Error(`MNIST classifier: example ${idx[k]} has no class_label`);
    if (ex.image.length !== P && ex.image.length !== 3 * P) throw new RangeError(`MNIST classifier: example ${idx[k]} has ${ex.image.length} values, expected a 32×32 image`);
    y[k] = ex.class_label;
    const [dy, dx] = shift ? shift(k) : [0, 0];
    for (let r = 0; r < S; r++) {
      const sr = r - dy;
      if (sr < 0 || sr >= S) continue;
      for (let c = 0; c < S; c++) {
        const sc = c - dx;
        if (sc >= 0 && sc < S) x[k * P + r * S + c] = ex.image[sr * S + sc];
      }
    }
  }
  return { x: T.tensor(x, [idx.length, 1, S, S]), y };
}

export interface TrainClassifierOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Train on a seeded random n of the training examples (quick runs). */
  limit?: number;
  /** Largest random translation in pixels (default 2; 0 disables). */
  maxShift?: number;
  log?: (line: string) => void;
}

export interface ClassifierInfo {
  arch: string;
  features: number;
  epochs: number;
  batch_size: number;
  lr: number;
  seed: number;
  train_examples: number;
  held_out_examples: number;
  held_out_accuracy: number;
  train_seconds: number;
  /** Where the data came from (dataset, split seed, held-out count), for the cache check. */
  data: Record<string, string | number>;
}

/** Fraction of `ds` the classifier labels correctly. */
export function accuracy(net: MnistClassifier, ds: LabelledImages, batchSize = 250): number {
  let right = 0;
  net.eval();
  T.noGrad(() => {
    for (let i = 0; i < ds.length; i += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, ds.length - i) }, (_, k) => i + k);
      T.tidy(() => {
        const { x, y } = batch(ds, idx);
        const pred = predict(net, x);
        pred.forEach((p, k) => (right += p === y[k] ? 1 : 0));
      });
    }
  });
  return right / ds.length;
}

/** Argmax class of each image [B, C, 32, 32]. */
export function predict(net: MnistClassifier, x: T.Tensor): Int32Array {
  let out = new Int32Array(0);
  T.noGrad(() => T.tidy(() => {
    out = (T.contiguousData(T.argmax(net.forward(x), 1)) as Int32Array).slice();
  }));
  return out;
}

/** Train a fresh classifier on `train`, reporting held-out accuracy after each epoch. */
export function trainClassifier(train: LabelledImages, heldOut: LabelledImages, o: TrainClassifierOptions = {}): { net: MnistClassifier; info: Omit<ClassifierInfo, 'data'> } {
  const D = CLASSIFIER_DEFAULTS;
  const epochs = o.epochs ?? D.epochs, bs = o.batchSize ?? D.batchSize, lr = o.lr ?? D.lr, seed = o.seed ?? 0, maxShift = o.maxShift ?? D.maxShift;
  const n = Math.min(o.limit ?? train.length, train.length);
  if (n < 1) throw new RangeError('MNIST classifier: no training examples');
  const gen = new T.Generator(seed);
  const net = new MnistClassifier(gen);
  const opt = new Adam(net.parameters(), { lr });
  const t0 = Date.now();
  // The examples used (all, or a random n: datasets are often ordered by class).
  const pool = shuffled(Int32Array.from({ length: train.length }, (_, i) => i), gen).subarray(0, n);
  let acc = 0;
  const totalSteps = epochs * Math.ceil(n / bs);
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    net.train();
    const order = shuffled(pool.slice(), gen);
    let lossSum = 0, steps = 0;
    for (let i = 0; i < n; i += bs) {
      const idx = order.subarray(i, Math.min(i + bs, n));
      const shifts = Array.from({ length: idx.length }, () => [shiftDraw(gen, maxShift), shiftDraw(gen, maxShift)] as [number, number]);
      lossSum += T.tidy(() => {
        const { x, y } = batch(train, idx, (k) => shifts[k]);
        const loss = crossEntropy(net.forward(x), y);
        loss.backward();
        return loss.item();
      });
      opt.lr = lr * (1 - step / totalSteps);
      opt.step();
      opt.zeroGrad();
      steps++;
      step++;
    }
    acc = heldOut.length ? accuracy(net, heldOut) : NaN;
    o.log?.(`epoch ${e + 1}/${epochs}: loss ${(lossSum / steps).toFixed(4)}, held-out accuracy ${(100 * acc).toFixed(2)} % (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  net.eval();
  return {
    net,
    info: {
      arch: ARCH, features: CLASSIFIER_FEATURES, epochs, batch_size: bs, lr, seed,
      train_examples: n, held_out_examples: heldOut.length, held_out_accuracy: acc, train_seconds: (Date.now() - t0) / 1000,
    },
  };
}

/** Fisher–Yates shuffle in place with the run's generator. */
function shuffled(a: Int32Array, gen: T.Generator): Int32Array {
  for (let i = a.length - 1; i > 0; i--) {
    const j = gen.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function shiftDraw(gen: T.Generator, max: number): number {
  return max > 0 ? gen.int(2 * max + 1) - max : 0;
}

export function saveClassifier(dir: string, net: MnistClassifier, info: ClassifierInfo): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, CLASSIFIER_WEIGHTS), net.stateDict(), { arch: ARCH });
  writeFileAtomic(path.join(dir, CLASSIFIER_INFO), new TextEncoder().encode(`${JSON.stringify(info, null, 2)}\n`));
}

/** The saved classifier in `dir`, or null when there is none. Throws on a file that is not one. */
export function loadClassifier(dir: string): { net: MnistClassifier; info: ClassifierInfo } | null {
  const wf = path.join(dir, CLASSIFIER_WEIGHTS), jf = path.join(dir, CLASSIFIER_INFO);
  if (!existsSync(wf) || !existsSync(jf)) return null;
  const info = JSON.parse(readFileSync(jf, 'utf8')) as ClassifierInfo;
  if (info.arch !== ARCH) throw new Error(`${jf}: classifier architecture "${info.arch}" is not ${ARCH}; retrain with ldm train-classifier --force`);
  const net = new MnistClassifier();
  net.loadStateDict(readSafetensors(wf).tensors, { source: wf });
  return { net: net.eval(), info };
}

/** The classifier's penultimate layer as a FeatureNet. */
export class MnistFeatureNet implements FeatureNet {
  readonly name = 'mnist-classifier';
  readonly dim = CLASSIFIER_FEATURES;
  constructor(readonly net: MnistClassifier) {}
  features(images: T.Tensor): Float32Array {
    return valuesOf(() => this.net.features(images));
  }
}
