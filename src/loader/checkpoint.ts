// Loading a checkpoint's state dict into a Module: the key conventions of LDM checkpoints on top of the
// file formats of src/io/ckpt.ts — the EMA shadows LitEma stores (ldm/modules/ema.py), the keys real
// checkpoints carry that no module owns, the reference's init_from_ckpt with ignore_keys.

import * as T from '../engine/index.js';
import { readCheckpoint, type Checkpoint, type LazyTensor } from '../io/ckpt.js';
import { formatLoadReport, isMeta, type LoadReport, type Module } from '../nn/index.js';

/** The key LitEma stores a parameter's shadow under: `model_ema.` + the name (relative to the EMA'd module) without dots. */
export function emaKey(name: string, scope = 'model.'): string {
  if (!name.startsWith(scope)) throw new Error(`emaKey: ${name} is not under ${scope}`);
  return `model_ema.${name.slice(scope.length).replace(/\./g, '')}`;
}

/** Keys that real checkpoints carry but no module of ours owns: sampler buffers, training-loss weights, EMA bookkeeping. */
export function isIgnorableKey(key: string): boolean {
  return /^ddim_/.test(key) || /^((first_stage_model|cond_stage_model)\.)?loss\./.test(key) || /^model_ema\./.test(key)
    // the CLIP text model's position index buffer (transformers < 4.31 saved it; int64 or float, always 0..n−1)
    || /(^|\.)transformer\.(text_model\.)?embeddings\.position_ids$/.test(key);
}

/**
 * The other spelling a file may use for a module key: the CLIP text model without its `text_model.` level
 * (community SD checkpoints, transformers ≥ 5's CLIPTextModel state dict).
 */
export function alternateKey(key: string): string | null {
  const m = /^(.*\btransformer\.)text_model\.(.*)$/.exec(key);
  return m ? m[1] + m[2] : null;
}

export interface LoadOptions {
  /** Load the EMA shadows (`model_ema.*`) into the parameters under `emaScope` instead of their live values. */
  ema?: boolean;
  /** The module LitEma tracked, as a key prefix: `model.` for LatentDiffusion, `` for a whole first-stage model. */
  emaScope?: string;
  /** Throw when any key is missing, unexpected (and not ignorable) or mis-shaped (default true). */
  strict?: boolean;
  /** Remove this prefix from file keys first (e.g. `first_stage_model.`), dropping keys without it. */
  stripPrefix?: string;
  /** Drop file keys starting with any of these (the reference's `ignore_keys`); they are reported as ignored. */
  ignorePrefixes?: string[];
  /** Compare keys and shapes only (a shape-only build may be given): report, or throw with `strict`, reading no weights. */
  dryRun?: boolean;
}

export interface CheckpointLoadReport extends LoadReport {
  /** File keys that were skipped on purpose (ddim_*, *loss.*, EMA bookkeeping / the unused weight set). */
  ignored: string[];
  usedEma: boolean;
}

/**
 * Copy a checkpoint's weights into `module` (tensor by tensor, straight from the file).
 * Reports missing, unexpected and mis-shaped keys; with `strict` (default) they throw, naming them.
 */
export function loadCheckpointInto(module: Module, ckpt: Checkpoint | string, opts: LoadOptions = {}): CheckpointLoadReport {
  const own = typeof ckpt === 'string';
  const c = typeof ckpt === 'string' ? readCheckpoint(ckpt) : ckpt;
  try {
    let file = c.stateDict;
    if (opts.stripPrefix) {
      const p = opts.stripPrefix;
      file = new Map([...file].filter(([k]) => k.startsWith(p)).map(([k, v]) => [k.slice(p.length), v]));
    }
    const dropped: string[] = [];
    if (opts.ignorePrefixes?.length) {
      const pre = opts.ignorePrefixes;
      file = new Map([...file].filter(([k]) => (pre.some((p) => k.startsWith(p)) ? (dropped.push(k), false) : true)));
    }
    const scope = opts.emaScope ?? 'model.';
    const params = new Set([...module.namedParameters()].map(([k]) => k));
    if (opts.ema && ![...file.keys()].some((k) => k.startsWith('model_ema.') && k !== 'model_ema.decay' && k !== 'model_ema.num_updates')) {
      throw new Error(`${c.path}: EMA weights requested but the file has no model_ema.* shadows`);
    }
    const report: CheckpointLoadReport = { missing: [], unexpected: [], mismatched: [], ignored: dropped, usedEma: !!opts.ema };
    const used = new Set<string>();
    const plan: [string, T.Tensor, LazyTensor][] = [];
    for (const [k, t] of module.stateDict()) {
      let srcKey = opts.ema && params.has(k) && k.startsWith(scope) ? emaKey(k, scope) : k;
      let src = file.get(srcKey);
      if (!src) {
        const alt = alternateKey(srcKey);
        if (alt && file.has(alt)) (src = file.get(alt)), (srcKey = alt);
      }
      if (!src) {
        report.missing.push(srcKey === k ? k : `${k} (as ${srcKey})`);
        continue;
      }
      used.add(srcKey);
      if (opts.ema && srcKey !== k && file.has(k)) used.add(k); // the live copy is deliberately skipped
      if (!T.sameShape(src.shape, t.shape)) {
        report.mismatched.push({ key: k, expected: [...t.shape], got: [...src.shape] });
        continue;
      }
      plan.push([k, t, src]);
    }
    for (const k of file.keys()) {
      if (used.has(k)) {
        if (opts.ema && !k.startsWith('model_ema.') && params.has(k) && k.startsWith(scope)) report.ignored.push(k);
        continue;
      }
      if (isIgnorableKey(k)) report.ignored.push(k);
      else report.unexpected.push(k);
    }
    const bad = report.missing.length + report.unexpected.length + report.mismatched.length;
    if (bad > 0 && opts.strict !== false) throw new Error(formatLoadReport(report, c.path));
    if (opts.dryRun) return report;
    const meta = plan.find(([, t]) => isMeta(t));
    if (meta) throw new Error(`${c.path}: cannot load weights into a shape-only (meta) build (${meta[0]} has no storage); build the model without { meta: true }`);
    for (const [k, t, src] of plan) src.readInto(t, k);
    return report;
  } finally {
    if (own) c.close();
  }
}

/** A first-stage model as built from its config: `ckpt_path` and `ignore_keys` recorded, not loaded. */
export interface CkptInitializable extends Module {
  readonly ckptPath: string | null;
  readonly ignoreKeys: string[];
}

/**
 * The reference's init_from_ckpt (ldm/models/autoencoder.py): load `ckpt_path` (strict=False) after dropping
 * keys that start with any of `ignore_keys`. Not run at build time (configs in the wild point at missing
 * files); call it when wanted.
 */
export function initFromCkpt(model: CkptInitializable, path: string | null = model.ckptPath, ignoreKeys: string[] = model.ignoreKeys): CheckpointLoadReport {
  if (!path) throw new Error(`${model.constructor.name}: no ckpt_path configured to initialise from`);
  return loadCheckpointInto(model, path, { strict: false, ignorePrefixes: ignoreKeys });
}
