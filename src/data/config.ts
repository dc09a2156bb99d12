// The `data:` section of a reference training config (main.py's DataModuleFromConfig: batch_size,
// num_workers, wrap, train / validation / test {target, params}) mapped to our datasets.
//
// Targets (the params each reads are listed in DATA_TARGETS below):
//   ldm.data.mnist.MNIST, MNISTTrain, MNISTValidation        the `mnist` package's 10,000 digits (32×32, 1 channel);
//                                                           Train / Validation = the split holding out `held_out` (1,000)
//   ldm.data.emoji.Emoji, EmojiTrain, EmojiValidation        the `emoji-datasource-google` images (64×64 on white)
//   ldm.data.imagefolder.ImageFolder, ImageFolderTrain, ImageFolderValidation
//                                                           a folder of PNG/JPEG: labels from sub-folders or a CSV, captions
//   taming.data.custom.CustomTrain, CustomTest              the reference's list-of-paths datasets (taming/data/custom.py)
//   ldm.data.lsun.LSUN{Churches,Bedrooms,Cats}{Train,Validation}  the reference's LSUN lists under data/lsun/, when present
// `split: all | train | validation` (with `held_out`, a count or fraction, and `split_seed`) selects a side of
// the deterministic held-out split of src/data/split.ts; the *Train / *Validation targets preset it.
// Reference targets that download or prepare data (ImageNet, CelebA-HQ, FFHQ, OpenImages, ...) are
// refused with the YAML of an ImageFolder to point at a local copy instead.

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, Params, joinPath, type ConfigNode } from '../io/config.js';
import { Emoji } from './emoji.js';
import { ImageFiles } from './image-files.js';
import { ImageFolder } from './image-folder.js';
import { MNIST } from './mnist.js';
import type { PreprocessOptions } from './preprocess.js';
import { INTERPOLATIONS, type Interpolation } from './resize.js';
import { splitDataset } from './split.js';
import type { Dataset } from './types.js';

type Split = 'all' | 'train' | 'validation';
type DataBuilder = (p: Params, path: string) => Dataset;

function split(ds: Dataset, p: Params, dflt: Split, heldOut: number): Dataset {
  const side = p.oneOf<Split>('split', ['all', 'train', 'validation'], dflt);
  const h = p.number('held_out', heldOut);
  const seed = p.int('split_seed', 0);
  if (side === 'all') return ds;
  try {
    const s = splitDataset(ds, { heldOut: h, seed });
    return side === 'train' ? s.train : s.heldOut;
  } catch (e) {
    throw new ConfigError(`${joinPath(p.path, 'held_out')}: ${(e as Error).message} (${p.target})`);
  }
}

function preprocessParams(p: Params, o: { size?: number; flipP: number }): PreprocessOptions {
  const pre: PreprocessOptions = { size: o.size ?? p.int('size') };
  pre.randomCrop = p.bool('random_crop', false);
  pre.flipP = p.number('flip_p', o.flipP);
  pre.interpolation = p.oneOf<Interpolation>('interpolation', INTERPOLATIONS, 'bicubic');
  const ch = p.int('channels', 3);
  if (ch !== 1 && ch !== 3) throw new ConfigError(`${joinPath(p.path, 'channels')}: expected 1 or 3, got ${ch} (${p.target})`);
  pre.channels = ch;
  if (p.has('background')) {
    const bg = p.ints('background');
    if (bg.length !== 3 || bg.some((v) => v < 0 || v > 255)) throw new ConfigError(`${joinPath(p.path, 'background')}: expected [r, g, b] in 0..255, got ${JSON.stringify(bg)} (${p.target})`);
    pre.background = bg as [number, number, number];
  } else p.get('background');
  return pre;
}

const mnist = (dflt: Split): DataBuilder => (p) => {
  const size = p.int('size', 32);
  const channels = p.int('channels', 1);
  if (channels !== 1 && channels !== 3) throw new ConfigError(`${joinPath(p.path, 'channels')}: expected 1 or 3, got ${channels} (${p.target})`);
  return split(new MNIST({ size, channels }), p, dflt, 1000);
};

const emoji = (dflt: Split): DataBuilder => (p) => {
  const classes = p.oneOf('classes', ['category', 'subcategory'] as const, 'category');
  const baseOnly = p.bool('base_only', false);
  // Emoji are not flipped by default (arrows, flags and text have a direction).
  const pre = preprocessParams(p, { size: p.int('size', 64), flipP: 0 });
  return split(new Emoji({ ...pre, classes, baseOnly, cache: p.bool('cache', true) }), p, dflt, 200);
};

const imageFolder = (dflt: Split): DataBuilder => (p) => {
  const root = p.string('root');
  // Flips as ldm/data/lsun.py: p = 0.5 for training, 0 for validation.
  const pre = preprocessParams(p, { flipP: dflt === 'validation' ? 0 : 0.5 });
  const labels = p.optString('labels');
  const captions = p.optString('captions');
  let ds: Dataset;
  try {
    ds = new ImageFolder({ root, ...pre, labels, captions, cache: p.bool('cache', false) });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${p.path}: ${(e as Error).message} (${p.target})`);
  }
  return split(ds, p, dflt, 0.05);
};

const custom = (key: string): DataBuilder => (p) => {
  const size = p.int('size');
  const list = p.string(key);
  let text: string;
  try {
    text = readFileSync(list, 'utf8');
  } catch (e) {
    throw new ConfigError(`${joinPath(p.path, key)}: cannot read ${list}: ${(e as Error).message} (${p.target})`);
  }
  const paths = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (paths.length === 0) throw new ConfigError(`${joinPath(p.path, key)}: ${list} lists no images (${p.target})`);
  // taming's ImagePaths: resize the short side, center crop, no flip.
  return new ImageFiles(paths.map((f) => ({ path: f, relpath: f })), { size, flipP: 0, randomCrop: false });
};

// ldm/data/lsun.py: a file list under data/lsun/ (relative to the working directory, as in the reference),
// center square crop, PIL resize to size×size (bicubic by default), flips with flip_p (0.5; 0 for validation).
const LSUN: Record<string, [string, string]> = {
  Churches: ['church_outdoor', 'churches'],
  Bedrooms: ['bedrooms', 'bedrooms'],
  Cats: ['cat', 'cats'],
};
const lsun = (name: string, validation: boolean): DataBuilder => (p, path) => {
  const [list, dir] = LSUN[name];
  const txt = `data/lsun/${list}_${validation ? 'val' : 'train'}.txt`, root = `data/lsun/${dir}`;
  const size = p.optInt('size');
  const interp = p.oneOf('interpolation', ['linear', 'bilinear', 'bicubic', 'lanczos'] as const, 'bicubic');
  const flipP = p.number('flip_p', validation ? 0 : 0.5);
  if (size === null) {
    // The reference keeps the center square at its own size: only square images of one size stack into batches.
    throw new ConfigError(`${joinPath(p.path, 'size')}: give a size (the reference's default, None, keeps each image's own size, which cannot be batched) (${p.target})`);
  }
  if (!existsSync(txt)) {
    throw new ConfigError(`${joinPath(path, 'target')}: ${p.target} reads ${txt} (image paths relative to ${root}) from the working directory, as ldm/data/lsun.py does, and ${resolve(txt)} does not exist. Prepare the LSUN files there, or point an image folder at the images instead (under data.params):\n${folderYaml(path, size, false, validation)}`);
  }
  const rel = readFileSync(txt, 'utf8').split(/\r?\n/).filter((l) => l !== '');
  if (rel.length === 0) throw new ConfigError(`${txt}: lists no images (${p.target})`);
  const records = rel.map((r) => ({ path: join(root, r), relpath: r }));
  return new ImageFiles(records, { size, cropFirst: true, interpolation: interp === 'linear' ? 'bilinear' : interp, flipP });
};

/** Our dataset targets. */
export const DATA_TARGETS: Record<string, DataBuilder> = {
  'ldm.data.mnist.MNIST': mnist('all'),
  'ldm.data.mnist.MNISTTrain': mnist('train'),
  'ldm.data.mnist.MNISTValidation': mnist('validation'),
  'ldm.data.emoji.Emoji': emoji('all'),
  'ldm.data.emoji.EmojiTrain': emoji('train'),
  'ldm.data.emoji.EmojiValidation': emoji('validation'),
  'ldm.data.imagefolder.ImageFolder': imageFolder('all'),
  'ldm.data.imagefolder.ImageFolderTrain': imageFolder('train'),
  'ldm.data.imagefolder.ImageFolderValidation': imageFolder('validation'),
  ...Object.fromEntries(Object.keys(LSUN).flatMap((n) => [
    [`ldm.data.lsun.LSUN${n}Train`, lsun(n, false)],
    [`ldm.data.lsun.LSUN${n}Validation`, lsun(n, true)],
  ])),
  'taming.data.custom.CustomTrain': custom('training_images_list_file'),
  'taming.data.custom.CustomTest': custom('test_images_list_file'),
};

/** Reference datasets that fetch or prepare their data: what they are, and whether they are class-labelled. */
const OFFLINE: { prefix: string; what: string; labels: boolean }[] = [
  { prefix: 'ldm.data.imagenet.ImageNetSR', what: 'ImageNet (ILSVRC2012) with super-resolution degradations', labels: false },
  { prefix: 'ldm.data.imagenet.', what: 'ImageNet (ILSVRC2012), downloaded and prepared by the dataset class', labels: true },
  { prefix: 'taming.data.faceshq.', what: 'CelebA-HQ / FFHQ, read from prepared file lists', labels: false },
  { prefix: 'ldm.data.faceshq.', what: 'CelebA-HQ / FFHQ (a module the reference repository does not ship)', labels: false },
  { prefix: 'ldm.data.openimages.', what: 'OpenImages (a module the reference repository does not ship)', labels: false },
  { prefix: 'ldm.data.landscapes.', what: 'landscape photographs (a module the reference repository does not ship)', labels: false },
  { prefix: 'ldm.data.previews.', what: 'preview images (a module the reference repository does not ship)', labels: false },
];

function sizeOf(node: Record<string, unknown>): number {
  const params = (node.params ?? {}) as Record<string, unknown>;
  const cfg = (params.config ?? {}) as Record<string, unknown>;
  const s = params.size ?? cfg.size;
  return typeof s === 'number' ? s : 256;
}

function folderYaml(path: string, size: number, labels: boolean, validation: boolean): string {
  const key = path.split('.').pop() ?? 'train';
  return [
    `    ${key}:`,
    `      target: ldm.data.imagefolder.ImageFolder`,
    `      params:`,
    `        root: /path/to/your/images${labels ? '   # one sub-folder per class' : ''}`,
    `        size: ${size}`,
    ...(labels ? ['        labels: folders'] : []),
    ...(validation ? ['        flip_p: 0'] : ['        random_crop: true']),
  ].join('\n');
}

function offlineError(node: Record<string, unknown>, path: string): ConfigError | null {
  const target = node.target as string;
  const known = OFFLINE.find((o) => target.startsWith(o.prefix));
  if (!known) return null;
  const validation = /Validation$|Test$/.test(target);
  const yaml = folderYaml(path, sizeOf(node), known.labels, validation);
  return new ConfigError(
    `${joinPath(path, 'target')}: ${target} needs ${known.what}, which this port cannot fetch or prepare offline. ` +
      `Point an image folder at a local copy instead (under data.params):\n${yaml}`,
  );
}

/** Build one dataset node (`data.params.train`, ...) of a config. */
export function buildDataset(node: ConfigNode, path: string): Dataset {
  if (!node || typeof node !== 'object' || typeof node.target !== 'string') throw new ConfigError(`${path}: expected a mapping with a "target" string`);
  const builder = DATA_TARGETS[node.target];
  if (!builder) {
    throw offlineError(node, path) ?? new ConfigError(`${joinPath(path, 'target')}: unknown dataset target ${node.target} (known: ${Object.keys(DATA_TARGETS).join(', ')})`);
  }
  for (const k of Object.keys(node)) if (k !== 'target' && k !== 'params') throw new ConfigError(`unknown key ${joinPath(path, k)} beside target ${node.target}`);
  const raw = node.params ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${joinPath(path, 'params')}: expected a mapping`);
  const p = new Params(raw as Record<string, unknown>, joinPath(path, 'params'), node.target);
  const ds = builder(p, path);
  p.assertAllUsed();
  return ds;
}

export interface DataConfig {
  batchSize: number;
  /** The reference's num_workers (its DataLoader processes); informative here. */
  numWorkers: number | null;
  train: Dataset;
  validation: Dataset | null;
  test: Dataset | null;
}

/**
 * The data section of a config document (the whole document with `data:`, or the data node itself);
 * `path` names the file in messages.
 */
export function parseDataConfig(doc: Record<string, unknown>, path = 'config'): DataConfig {
  const isNode = typeof doc.target === 'string' && doc.data === undefined;
  const node = (isNode ? doc : doc.data) as Record<string, unknown> | undefined;
  const at = isNode ? '' : 'data';
  const where = (k: string) => `${path}: ${joinPath(at, k)}`;
  if (!node || typeof node !== 'object') throw new ConfigError(`${path}: no data section (expected "data: {target: main.DataModuleFromConfig, params: {batch_size, train, ...}}")`);
  if (node.target !== 'main.DataModuleFromConfig') throw new ConfigError(`${where('target')}: expected main.DataModuleFromConfig, got ${JSON.stringify(node.target)}`);
  const raw = node.params;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${where('params')}: expected a mapping`);
  try {
    const p = new Params(raw as Record<string, unknown>, joinPath(at, 'params'), 'main.DataModuleFromConfig');
    const batchSize = p.int('batch_size');
    if (batchSize < 1) throw new ConfigError(`${joinPath(at, 'params.batch_size')}: must be ≥ 1, got ${batchSize}`);
    const numWorkers = p.optInt('num_workers');
    // wrap (WrappedDataset), worker seeding and shuffling of evaluation loaders do not change the examples.
    p.ignore('wrap', 'use_worker_init_fn', 'shuffle_val_dataloader', 'shuffle_test_loader');
    const build = (k: string) => (p.has(k) ? buildDataset(p.get(k) as ConfigNode, joinPath(at, `params.${k}`)) : (p.get(k), null));
    const train = build('train');
    if (!train) throw new ConfigError(`${joinPath(at, 'params.train')}: required dataset is missing`);
    const validation = build('validation');
    const test = build('test');
    if (p.has('predict')) throw new ConfigError(`${joinPath(at, 'params.predict')}: prediction datasets are not used for training`);
    p.assertAllUsed();
    return { batchSize, numWorkers, train, validation, test };
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
}
