// Training configuration: one or more YAML files merged in order (main.py's `--base a.yaml b.yaml`), then
// `key=value` overrides from the command line (OmegaConf.from_dotlist: dotted paths, values typed like
// YAML scalars), then the three sections read by the trainers:
//   model:     {base_learning_rate, target, params}  — built through the targets table
//   data:      the data module (our datasets through the same kind of table, src/data)
//   lightning: {trainer: {...}, callbacks: {...}}    — the fields we honour; the others get a notice or an error
// plus an optional `training:` section for what this port adds (checkpoint cadence, condition dropout,
// cached latents, sample grids); see TRAINING_KEYS.

import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../io/config.js';

export type Doc = Record<string, unknown>;

function isMap(v: unknown): v is Doc {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** OmegaConf.merge: mappings merge key by key, anything else (lists included) is replaced. */
export function mergeDocs(a: Doc, b: Doc): Doc {
  const out: Doc = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isMap(v) && isMap(out[k]) ? mergeDocs(out[k] as Doc, v) : structuredClone(v);
  return out;
}

export function readConfigFiles(files: string[]): Doc {
  if (files.length === 0) throw new ConfigError('no config file given (--config <file.yaml>)');
  let doc: Doc = {};
  for (const f of files) {
    let d: unknown;
    try {
      d = parse(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new ConfigError(`${f}: ${(e as Error).message}`);
    }
    if (!isMap(d)) throw new ConfigError(`${f}: expected a mapping at the top level`);
    doc = mergeDocs(doc, d);
  }
  return doc;
}

/** Parse `a.b.c=value` into [path, typed value]; the value is read as a YAML scalar/flow (`64`, `1e-4`, `true`, `[1,2]`, `null`). */
export function parseOverride(arg: string): [string[], unknown] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError(`override "${arg}": expected key.path=value`);
  const key = arg.slice(0, eq).trim();
  const raw = arg.slice(eq + 1);
  const parts = key.split('.');
  if (parts.some((p) => p === '')) throw new ConfigError(`override "${arg}": empty component in key path ${key}`);
  let value: unknown;
  try {
    value = raw.trim() === '' ? '' : parse(raw);
  } catch {
    value = raw;
  }
  return [parts, value];
}

/** Apply overrides in order; intermediate mappings are created, list elements are addressed by index. */
export function applyOverrides(doc: Doc, overrides: string[]): Doc {
  const out = structuredClone(doc);
  for (const o of overrides) {
    const [parts, value] = parseOverride(o);
    let node: unknown = out;
    for (let i = 0; i < parts.length; i++) {
      const k = parts[i];
      const last = i === parts.length - 1;
      const here = parts.slice(0, i + 1).join('.');
      if (Array.isArray(node)) {
        const idx = Number(k);
        if (!Number.isInteger(idx) || idx < 0 || idx >= node.length) throw new ConfigError(`override ${o}: ${here} is not an index of a list of ${node.length}`);
        if (last) node[idx] = value;
        else node = node[idx];
        continue;
      }
      if (!isMap(node)) throw new ConfigError(`override ${o}: ${parts.slice(0, i).join('.')} is a ${JSON.stringify(node)}, not a mapping`);
      if (last) node[k] = value;
      else {
        if (node[k] === undefined || node[k] === null) node[k] = {};
        node = node[k];
      }
    }
  }
  return out;
}

export function toYaml(doc: Doc): string {
  return stringify(doc, { lineWidth: 0 });
}

/** Get a value at a dotted path (undefined when absent). */
export function getPath(doc: unknown, path: string): unknown {
  let n = doc;
  for (const k of path.split('.')) {
    if (!isMap(n)) return undefined;
    n = n[k];
  }
  return n;
}

// ---- lightning.trainer -------------------------------------------------------------------------------

export interface TrainerSettings {
  maxSteps: number | null;
  maxEpochs: number | null;
  accumulate: number;
  clipVal: number | null;
  logEvery: number;
}

/** lightning.trainer keys that change nothing here (device / speed settings of PyTorch Lightning). */
const TRAINER_NOOP = new Set(['benchmark', 'gpus', 'accelerator', 'devices', 'strategy', 'num_nodes', 'num_sanity_val_steps', 'deterministic',
  'replace_sampler_ddp', 'sync_batchnorm', 'auto_select_gpus', 'distributed_backend', 'plugins', 'weights_summary', 'progress_bar_refresh_rate',
  'val_check_interval', 'check_val_every_n_epoch', 'limit_val_batches', 'enable_progress_bar', 'resume_from_checkpoint', 'logger']);

export function parseTrainer(doc: Doc, notice: (s: string) => void): TrainerSettings {
  const tr = getPath(doc, 'lightning.trainer') ?? {};
  if (!isMap(tr)) throw new ConfigError('lightning.trainer: expected a mapping');
  const int = (k: string, min: number): number | null => {
    const v = tr[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ConfigError(`lightning.trainer.${k}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const s: TrainerSettings = {
    maxSteps: int('max_steps', -1),
    maxEpochs: int('max_epochs', -1),
    accumulate: int('accumulate_grad_batches', 1) ?? 1,
    clipVal: null,
    logEvery: int('log_every_n_steps', 1) ?? 10,
  };
  if (s.maxSteps === -1) s.maxSteps = null;
  if (s.maxEpochs === -1) s.maxEpochs = null;
  const clip = tr.gradient_clip_val;
  if (clip !== undefined && clip !== null) {
    if (typeof clip !== 'number' || !(clip >= 0)) throw new ConfigError(`lightning.trainer.gradient_clip_val: expected a number ≥ 0, got ${JSON.stringify(clip)}`);
    s.clipVal = clip > 0 ? clip : null;
  }
  const alg = tr.gradient_clip_algorithm;
  if (alg !== undefined && alg !== null && alg !== 'norm') throw new ConfigError(`lightning.trainer.gradient_clip_algorithm: only "norm" is supported, got ${JSON.stringify(alg)}`);
  const prec = tr.precision;
  if (prec !== undefined && prec !== null && prec !== 32 && prec !== '32') throw new ConfigError(`lightning.trainer.precision: only 32-bit training is supported, got ${JSON.stringify(prec)}`);
  if (tr.amp_backend !== undefined) notice('lightning.trainer.amp_backend: ignored (32-bit training)');
  const known = new Set(['max_steps', 'max_epochs', 'accumulate_grad_batches', 'gradient_clip_val', 'gradient_clip_algorithm', 'precision', 'log_every_n_steps', 'amp_backend']);
  const ignored = Object.keys(tr).filter((k) => TRAINER_NOOP.has(k));
  if (ignored.length) notice(`lightning.trainer: ${ignored.join(', ')} have no effect here (one CPU process, deterministic kernels)`);
  const unknown = Object.keys(tr).filter((k) => !known.has(k) && !TRAINER_NOOP.has(k));
  if (unknown.length) throw new ConfigError(`lightning.trainer.${unknown[0]}: not supported by this trainer${unknown.length > 1 ? ` (also: ${unknown.slice(1).join(', ')})` : ''}; supported: ${[...known].join(', ')}`);
  return s;
}

/** The image logger's cadence from lightning.callbacks.image_logger.params (main.ImageLogger). */
export function imageLoggerSettings(doc: Doc): { every: number | null; maxImages: number | null } {
  const p = getPath(doc, 'lightning.callbacks.image_logger.params');
  if (!isMap(p)) return { every: null, maxImages: null };
  const every = typeof p.batch_frequency === 'number' ? p.batch_frequency : null;
  const maxImages = typeof p.max_images === 'number' ? p.max_images : null;
  return { every, maxImages };
}

// ---- learning rate ---------------------------------------------------------------------------------------

/** main.py: lr = accumulate_grad_batches · ngpu · batch_size · base_lr (with --scale_lr, the default), else base_lr. */
export function scaledLearningRate(baseLr: number, batchSize: number, accumulate: number, scale: boolean, ngpu = 1): { lr: number; message: string } {
  if (scale) {
    const lr = accumulate * ngpu * batchSize * baseLr;
    return { lr, message: `Setting learning rate to ${lr.toExponential(2)} = ${accumulate} (accumulate_grad_batches) * ${ngpu} (num_gpus) * ${batchSize} (batchsize) * ${baseLr.toExponential(2)} (base_lr)` };
  }
  return { lr: baseLr, message: `++++ NOT USING LR SCALING ++++\nSetting learning rate to ${baseLr.toExponential(2)}` };
}

export function baseLearningRate(doc: Doc): number {
  const v = getPath(doc, 'model.base_learning_rate');
  if (typeof v !== 'number' || !(v > 0)) throw new ConfigError(`model.base_learning_rate: expected a positive number, got ${JSON.stringify(v)}`);
  return v;
}

// ---- training: (this port's section) -------------------------------------------------------------------

export interface TrainingSection {
  /** Write a checkpoint every N optimizer steps (0: only at the end / on Ctrl-C). */
  ckpt_every: number;
  /** Keep the last K step checkpoints (the one `last` points at is always kept). */
  keep_last: number;
  /** Sample / reconstruction grid every N steps (0: never); default from lightning.callbacks.image_logger. */
  image_every: number;
  /** Images in a grid (the autoencoder: inputs vs reconstructions). */
  max_images: number;
  /** DDIM steps and guidance scale of the training-time sample grids. */
  sample_steps: number;
  sample_scale: number;
  /** Rewrite the loss curve every N steps. */
  curve_every: number;
  /** Classifier-free guidance training: probability of replacing the condition by the unconditional one. */
  cond_drop_prob: number;
  /** The unconditional class label (default: the last class, n_classes − 1) and prompt (default ""). */
  uncond_label: number | null;
  uncond_prompt: string;
  /** Encode the dataset once with the frozen first stage: auto (when the dataset has no random augmentation), true, false. */
  cache_latents: 'auto' | boolean;
  /** LPIPS weights (VGG16 + lin heads) for the autoencoder's perceptual loss. */
  lpips_weights: string | null;
  /** EMA decay of LitEma. */
  ema_decay: number;
}

export const TRAINING_DEFAULTS: TrainingSection = {
  ckpt_every: 500, keep_last: 3, image_every: 0, max_images: 16, sample_steps: 20, sample_scale: 3, curve_every: 25,
  cond_drop_prob: 0, uncond_label: null, uncond_prompt: '', cache_latents: 'auto', lpips_weights: null, ema_decay: 0.9999,
};

export const TRAINING_KEYS = Object.keys(TRAINING_DEFAULTS);

export function parseTrainingSection(doc: Doc): TrainingSection {
  const raw = doc.training ?? {};
  if (!isMap(raw)) throw new ConfigError('training: expected a mapping');
  const s: TrainingSection = { ...TRAINING_DEFAULTS };
  const img = imageLoggerSettings(doc);
  if (img.every !== null) s.image_every = img.every;
  if (img.maxImages !== null) s.max_images = img.maxImages;
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in TRAINING_DEFAULTS)) throw new ConfigError(`training.${k}: unknown key (known: ${TRAINING_KEYS.join(', ')})`);
    const d = (TRAINING_DEFAULTS as unknown as Doc)[k];
    const bad = (what: string) => new ConfigError(`training.${k}: expected ${what}, got ${JSON.stringify(v)}`);
    if (k === 'cache_latents') {
      if (v !== 'auto' && typeof v !== 'boolean') throw bad('auto, true or false');
    } else if (k === 'uncond_label') {
      if (v !== null && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) throw bad('a class index or null');
    } else if (k === 'lpips_weights') {
      if (v !== null && typeof v !== 'string') throw bad('a file path or null');
    } else if (typeof d === 'number') {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad('a number ≥ 0');
      if (['ckpt_every', 'keep_last', 'image_every', 'max_images', 'sample_steps', 'curve_every'].includes(k) && !Number.isInteger(v)) throw bad('an integer');
    } else if (typeof d === 'string' && typeof v !== 'string') throw bad('a string');
    (s as unknown as Doc)[k] = v;
  }
  if (s.cond_drop_prob > 1) throw new ConfigError(`training.cond_drop_prob: expected a probability in [0, 1], got ${s.cond_drop_prob}`);
  if (s.keep_last < 1) throw new ConfigError('training.keep_last: keep at least 1 checkpoint');
  if (!(s.ema_decay > 0 && s.ema_decay < 1)) throw new ConfigError(`training.ema_decay: expected a number in (0, 1), got ${s.ema_decay}`);
  return s;
}
