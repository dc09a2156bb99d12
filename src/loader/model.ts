// Loading a LatentDiffusion: a model folder, a checkpoint file (+ its config.yaml), or the name of a model
// shipped in the package (src/loader/embedded.ts). One function, `loadModel`, builds the model from the
// config without random initialisation, copies the weights in (EMA shadows or the live weights) and
// reports what it loaded.

import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { readCheckpoint } from '../io/ckpt.js';
import { loadCheckpointInto, type CheckpointLoadReport } from './checkpoint.js';
import { buildFromConfigFile } from './targets.js';
import type { UNetBuildOptions } from '../models/unet/build.js';
import { skipInit } from '../nn/init.js';
import { embeddedModel, listModels, defaultModelName, type ModelInfo } from './embedded.js';

/** A problem with what the caller named as the model; `input` is which of the two it was. */
export class ModelFilesError extends Error {
  constructor(readonly input: 'ckpt' | 'config' | 'model', message: string) {
    super(message);
  }
}

export interface ModelFiles {
  config: string;
  ckpt: string;
}

/** Weight files a model folder may hold, by name, in order of preference (one tier must be unambiguous). */
const WEIGHT_TIERS: { what: string; test: (f: string) => boolean }[] = [
  { what: 'model.*', test: (f) => /^model\.(safetensors|ckpt|pt|pth|bin)$/.test(f) },
  { what: 'weights.*', test: (f) => /^weights\.(safetensors|ckpt|pt|pth|bin)$/.test(f) },
  { what: '*.ckpt', test: (f) => f.endsWith('.ckpt') },
];

/** The weights file of a model folder: model.*, else weights.*, else the one *.ckpt; never another .safetensors. */
export function folderWeights(dir: string): string {
  const files = readdirSync(dir).filter((f) => statSync(path.join(dir, f)).isFile()).sort();
  for (const tier of WEIGHT_TIERS) {
    const hits = files.filter(tier.test);
    if (hits.length === 1) return path.join(dir, hits[0]);
    if (hits.length > 1) {
      throw new ModelFilesError('ckpt', `${dir} holds several weight files (${hits.join(', ')}); name the one to use`);
    }
  }
  const other = files.filter((f) => /\.(safetensors|pt|pth|bin)$/.test(f));
  throw new ModelFilesError('ckpt', `${dir} holds no model weights (looked for model.*, weights.*, *.ckpt)${other.length ? `; ${other.join(', ')} ${other.length === 1 ? 'is' : 'are'} not taken as weights by name — name the file to use it` : ''}`);
}

/**
 * The config and weights a model argument stands for: a weights file (its config.yaml beside it unless
 * `config` is given) or a model folder (config.yaml + weights by name).
 */
export function resolveModelFiles(ckpt: string, config?: string): ModelFiles {
  if (!existsSync(ckpt)) throw new ModelFilesError('ckpt', `${ckpt} does not exist`);
  let weights = ckpt;
  let cfg = config;
  if (statSync(ckpt).isDirectory()) {
    weights = folderWeights(ckpt);
    if (!cfg && existsSync(path.join(ckpt, 'config.yaml'))) cfg = path.join(ckpt, 'config.yaml');
  }
  if (!cfg) {
    const beside = path.join(path.dirname(weights), 'config.yaml');
    if (!existsSync(beside)) throw new ModelFilesError('config', `no config.yaml beside ${weights}: give the model's config`);
    cfg = beside;
  }
  if (!existsSync(cfg)) throw new ModelFilesError('config', `${cfg} does not exist`);
  return { config: cfg, ckpt: weights };
}

export interface LoadModelOptions {
  /** The config.yaml, when it is not in the model folder / beside the checkpoint. */
  config?: string;
  /** Load the EMA weights: true, false, or 'auto' (default: when the config has use_ema and the file has them). */
  ema?: boolean | 'auto';
  /** Build options (e.g. the legacy transformer head count). */
  build?: UNetBuildOptions;
  /** Notes about the load (e.g. a use_ema config without EMA weights). */
  log?: (line: string) => void;
}

export interface LoadedModel {
  model: LatentDiffusion;
  files: ModelFiles;
  usedEma: boolean;
  report: CheckpointLoadReport;
  /** What an embedded model can do (its model.json); undefined for other models. */
  info?: ModelInfo;
  /** The embedded model's name, when it is one. */
  name?: string;
  /** Seconds spent building and loading. */
  seconds: number;
}

/** Whether a checkpoint's state dict has EMA shadows (not only LitEma's bookkeeping). */
export function hasEmaWeights(keys: Iterable<string>): boolean {
  for (const k of keys) if (k.startsWith('model_ema.') && k !== 'model_ema.decay' && k !== 'model_ema.num_updates') return true;
  return false;
}

/** The files of a model argument: an embedded model's name (or none: the default one), a folder or a weights file. */
export function modelSource(source: string | undefined, config?: string): { files: ModelFiles; info?: ModelInfo; name?: string } {
  if (source === undefined || (!existsSync(source) && embeddedModel(source))) {
    const e = embeddedModel(source ?? defaultModelName());
    if (!e) throw new ModelFilesError('model', source === undefined ? 'no model given and this package ships no embedded model' : `no model ${source}`);
    return { files: { config: config ?? e.config, ckpt: e.weights }, info: e.info, name: e.name };
  }
  if (!existsSync(source)) {
    const names = listModels().map((m) => m.name);
    throw new ModelFilesError('model', `${source} does not exist${names.length ? ` and is not an embedded model (${names.join(', ')})` : ''}`);
  }
  return { files: resolveModelFiles(source, config) };
}

/** The message for a config whose model is not a LatentDiffusion. */
export function notLatentDiffusion(config: string): ModelFilesError {
  return new ModelFilesError('config', `${config}: not a LatentDiffusion config (model.target must be ldm.models.diffusion.ddpm.LatentDiffusion or LatentInpaintDiffusion)`);
}

/**
 * Load a LatentDiffusion. `source`: a model folder, a weights file (.ckpt / .safetensors), or the name
 * of an embedded model; omitted: the default embedded model. (planModel in plan.ts checks the same
 * without loading any weights.)
 */
export function loadModel(source?: string, opts: LoadModelOptions = {}): LoadedModel {
  const t0 = Date.now();
  const { files, info, name } = modelSource(source, opts.config);
  const log = opts.log ?? (() => {});
  const model = skipInit(() => buildFromConfigFile<LatentDiffusion>(files.config, opts.build ?? {}));
  if (!(model instanceof LatentDiffusion)) throw notLatentDiffusion(files.config);
  const ck = readCheckpoint(files.ckpt);
  try {
    const hasEma = hasEmaWeights(ck.stateDict.keys());
    const ema = opts.ema ?? 'auto';
    let useEma: boolean;
    if (ema === 'auto') {
      useEma = model.config.use_ema && hasEma;
      if (model.config.use_ema && !hasEma) log(`note: the config has use_ema but ${path.basename(files.ckpt)} has no model_ema.* weights; using the live weights`);
    } else {
      if (ema && !hasEma) throw new ModelFilesError('ckpt', `${files.ckpt} has no EMA weights (model_ema.*)`);
      useEma = ema;
    }
    const report = loadCheckpointInto(model, ck, { ema: useEma });
    return { model: model.eval(), files, usedEma: useEma, report, info, name, seconds: (Date.now() - t0) / 1000 };
  } finally {
    ck.close();
  }
}
