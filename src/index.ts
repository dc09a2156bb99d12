// The public API of ldm-ts: load a model (an embedded one, a model folder, or an official config.yaml +
// checkpoint), sample images with any task, write PNGs. Everything else lives in its layer's folder.
//
//   import { loadModel, sample, writePng } from 'ldm-ts';
//   const m = loadModel();                                  // the default embedded model
//   const r = sample(m, { classLabel: 7, n: 4, seed: 1 });  // image i uses seed + i
//   r.images.forEach((im, i) => writePng(`seven-${r.perImage[i].seed}.png`, im));

export { loadModel, resolveModelFiles, folderWeights, ModelFilesError, type LoadedModel, type LoadModelOptions, type ModelFiles } from './loader/model.js';
export { listModels, embeddedModel, defaultModelName, modelsDir, type EmbeddedModel, type ModelInfo } from './loader/embedded.js';
export { sample, type SampleOptions, type SampleResult } from './tasks/generate.js';
export { DEFAULTS, defaultEta, defaultScale } from './tasks/defaults.js';
export { TaskError, TaskInputError, type TaskInput } from './tasks/errors.js';
export { modelTask, TASK_TITLES, type TaskName, type ParamValue } from './tasks/common.js';
export { SAMPLERS, SAMPLER_TABLE, SIGMA_SCHEDULES, samplerSpec, type SamplerName, type SamplerSpec, type SigmaSchedule } from './diffusion/samplers/index.js';
export type { StepCallback, StepInfo } from './diffusion/samplers/index.js';
export { LatentDiffusion } from './diffusion/latent-diffusion.js';
export { writePng, encodePng, readImage, decodeImage, readPngText, makeGrid, imageToTensor, tensorToImages, type Image } from './io/image.js';
export * as T from './engine/index.js';
// Training (ldm train-autoencoder / ldm train) and evaluation (ldm eval).
export { trainLDM, type TrainResult } from './train/train-ldm.js';
export { trainAutoencoder } from './train/train-autoencoder.js';
export type { TrainOptions } from './train/setup.js';
export * as metrics from './metrics/index.js';
