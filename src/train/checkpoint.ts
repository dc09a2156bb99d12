// Training checkpoints: one folder per checkpoint under <run>/checkpoints/,
//
//   step-000500/model.safetensors   the weights under the reference's state-dict names (model.*, first_stage_model.*,
//                                   cond_stage_model.*, the schedule buffers, scale_factor, model_ema.*),
//                                   metadata global_step / epoch — loadable by `ldm sample --ckpt <folder>`
//   step-000500/state.safetensors   what resuming needs beyond the weights: optimizer moments (`optimizer.<k>.state.<i>.<name>`)
//                                   and, as JSON in the metadata, the step, epoch, data-loader position, RNG states,
//                                   LR-scheduler position and optimizer hyper-parameters
//   step-000500/config.yaml         the merged config (so the folder is a complete model folder)
//   last -> step-000500             a symbolic link to the newest complete checkpoint
//
// A checkpoint is written into a hidden temporary folder (each file fsynced), which is renamed to its final name
// only when complete (then the parent folder is fsynced): an interrupted write — a killed process, a full disk —
// leaves at most a `.tmp-*` folder, never a partial `step-*`. `last` is replaced by renaming a new link over it.
// Folders are removed (pruning, or a step written again after resuming from an earlier one) by renaming them to
// a `.tmp-*` name first, so a process killed while deleting leaves no half-deleted `step-*` either. A checkpoint
// holding a NaN or an infinity is never written, and reading one refuses it (naming the file and the tensor).

import { existsSync, lstatSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { fsyncDir, writeAll } from '../io/atomic.js';
import { readSafetensors, serializeSafetensors } from '../io/safetensors.js';
import type { Optimizer, OptimizerStateDict } from '../nn/optim.js';
import { NonFiniteError, assertFiniteTensors } from './finite.js';

export interface TrainingState {
  /** What wrote it ('autoencoder' | 'ldm'); resuming checks it. */
  kind: string;
  globalStep: number;
  epoch: number;
  /** The data loader's position (its own JSON). */
  loader: unknown;
  /** Generator states by name (Generator.getState()). */
  rng: Record<string, number[]>;
  /** LR scheduler position (the optimizer step it will be asked for next). */
  schedulerStep: number;
  /** Anything else the trainer wants back (e.g. the accumulation position, scale_factor initialised). */
  extra: Record<string, unknown>;
}

export interface SavedCheckpoint {
  dir: string;
  step: number;
}

export const STEP_DIR = /^step-(\d+)$/;

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function writeSynced(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    writeAll(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Test hook: called between the files of a checkpoint write (an injected throw simulates a failed write). */
export let checkpointWriteHook: ((stage: string) => void) | null = null;
export function setCheckpointWriteHook(h: ((stage: string) => void) | null): void {
  checkpointWriteHook = h;
}

export interface SaveOptions {
  weights: Map<string, T.Tensor>;
  optimizers: Optimizer<Record<string, number | boolean>>[];
  state: TrainingState;
  configYaml: string;
  /** Keep this many step folders (oldest removed first; the newest is always kept). */
  keepLast: number;
}

/** Write checkpoints/step-NNNNNN atomically, point `last` at it, prune to keepLast. */
export function saveCheckpoint(ckptDir: string, o: SaveOptions): SavedCheckpoint {
  mkdirSync(ckptDir, { recursive: true });
  const name = stepDirName(o.state.globalStep);
  const final = path.join(ckptDir, name);
  const tensors = new Map<string, T.Tensor>();
  const groups: unknown[] = [];
  o.optimizers.forEach((opt, k) => {
    const sd = opt.stateDict();
    for (const [key, t] of sd.tensors) tensors.set(`optimizer.${k}.${key}`, t);
    groups.push(sd.groups);
  });
  const tmp = path.join(ckptDir, `.tmp-${name}-${process.pid}`);
  try {
    const where = `${ckptDir}: checkpoint ${name} not written`, keep = 'the last complete checkpoint stays as it is';
    assertFiniteTensors(o.weights, where, keep);
    assertFiniteTensors(tensors, where, keep);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const meta = { global_step: String(o.state.globalStep), epoch: String(o.state.epoch), format: 'ldm-ts training checkpoint' };
    writeSynced(path.join(tmp, 'model.safetensors'), serializeSafetensors(o.weights, meta));
    checkpointWriteHook?.('model');
    const bytes = serializeSafetensors(tensors, { state: JSON.stringify({ ...o.state, optimizerGroups: groups }) });
    writeSynced(path.join(tmp, 'state.safetensors'), bytes);
    checkpointWriteHook?.('state');
    writeSynced(path.join(tmp, 'config.yaml'), new TextEncoder().encode(o.configYaml));
    fsyncDir(tmp);
    checkpointWriteHook?.('rename');
    // A folder of that step from an earlier life of the run (resumed from an older checkpoint) is replaced.
    if (existsSync(final)) removeDir(ckptDir, name);
    renameSync(tmp, final);
    fsyncDir(ckptDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  checkpointWriteHook?.('link');
  pointLast(ckptDir, name);
  pruneCheckpoints(ckptDir, o.keepLast);
  return { dir: final, step: o.state.globalStep };
}

/** Remove ckptDir/name by renaming it to a `.tmp-*` name first (a kill mid-way leaves no partial step folder). */
function removeDir(ckptDir: string, name: string): void {
  const doomed = path.join(ckptDir, `.tmp-old-${name}-${process.pid}`);
  rmSync(doomed, { recursive: true, force: true });
  renameSync(path.join(ckptDir, name), doomed);
  rmSync(doomed, { recursive: true, force: true });
}

function pointLast(ckptDir: string, name: string): void {
  const link = path.join(ckptDir, 'last');
  const tmp = path.join(ckptDir, `.tmp-last-${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(name, tmp);
  renameSync(tmp, link);
  fsyncDir(ckptDir);
}

/** Step folders, oldest first. */
export function listCheckpoints(ckptDir: string): SavedCheckpoint[] {
  if (!existsSync(ckptDir)) return [];
  return readdirSync(ckptDir)
    .map((n) => ({ n, m: STEP_DIR.exec(n) }))
    .filter((x) => x.m && statSync(path.join(ckptDir, x.n)).isDirectory())
    .map((x) => ({ dir: path.join(ckptDir, x.n), step: Number(x.m![1]) }))
    .sort((a, b) => a.step - b.step);
}

export function pruneCheckpoints(ckptDir: string, keepLast: number): void {
  const all = listCheckpoints(ckptDir);
  let lastTarget: string | null = null;
  try {
    lastTarget = path.join(ckptDir, readlinkSync(path.join(ckptDir, 'last')));
  } catch { /* no link yet */ }
  for (const c of all.slice(0, Math.max(0, all.length - keepLast))) {
    if (c.dir !== lastTarget) removeDir(ckptDir, path.basename(c.dir));
  }
  // Left-overs of writes that were interrupted (by another process id) are garbage.
  for (const n of readdirSync(ckptDir)) if (n.startsWith('.tmp-') && !n.endsWith(`-${process.pid}`)) rmSync(path.join(ckptDir, n), { recursive: true, force: true });
}

export interface LoadedCheckpoint {
  dir: string;
  weights: Map<string, T.Tensor>;
  metadata: Record<string, string>;
  state: TrainingState & { optimizerGroups: OptimizerStateDict['groups'][] };
  optimizerTensors: Map<string, T.Tensor>;
}

/** Read and validate a checkpoint folder (both files parse, agree on the step and hold only finite values). */
export function readCheckpointDir(dir: string): LoadedCheckpoint {
  const wf = path.join(dir, 'model.safetensors'), sf = path.join(dir, 'state.safetensors');
  for (const f of [wf, sf]) if (!existsSync(f)) throw new Error(`${dir}: incomplete checkpoint (no ${path.basename(f)})`);
  const w = readSafetensors(wf);
  const s = readSafetensors(sf);
  let state: LoadedCheckpoint['state'];
  try {
    state = JSON.parse(s.metadata.state ?? '');
  } catch {
    throw new Error(`${sf}: no training state in its metadata (not written by ldm train?)`);
  }
  if (String(state.globalStep) !== w.metadata.global_step) throw new Error(`${dir}: weights (step ${w.metadata.global_step}) and training state (step ${state.globalStep}) disagree`);
  const refuse = 'a non-finite training state cannot be continued (resume from an earlier checkpoint folder: --resume <run>/checkpoints/step-NNNNNN)';
  assertFiniteTensors(w.tensors, wf, refuse);
  assertFiniteTensors(s.tensors, sf, refuse);
  return { dir, weights: w.tensors, metadata: w.metadata, state, optimizerTensors: s.tensors };
}

/** Restore optimizer k's state from a loaded checkpoint. */
export function restoreOptimizer(ck: LoadedCheckpoint, k: number, opt: Optimizer<Record<string, number | boolean>>): void {
  const pre = `optimizer.${k}.`;
  const tensors = new Map([...ck.optimizerTensors].filter(([key]) => key.startsWith(pre)).map(([key, t]) => [key.slice(pre.length), t]));
  const groups = ck.state.optimizerGroups?.[k];
  if (!groups) throw new Error(`${ck.dir}: the training state has no optimizer ${k}`);
  opt.loadStateDict({ tensors, groups }, `${ck.dir} optimizer ${k}`);
}

/**
 * The newest complete checkpoint of a run: `last` when it points at a readable one, else the newest readable
 * step folder (a damaged one is reported and skipped; one holding NaN / Inf is refused with NonFiniteError).
 * A step folder past `last`'s and written after `last` last moved comes first: its save was stopped between
 * the rename and the re-link. Folders of an earlier life of a resumed run are older than the link, so stay behind.
 */
export function findLatestCheckpoint(ckptDir: string, warn: (s: string) => void = () => {}): LoadedCheckpoint | null {
  const candidates: string[] = [];
  const steps = listCheckpoints(ckptDir).reverse();
  const link = path.join(ckptDir, 'last');
  try {
    const l = lstatSync(link, { bigint: true });
    if (l.isSymbolicLink()) {
      const target = path.join(ckptDir, readlinkSync(link));
      const targetStep = steps.find((c) => c.dir === target)?.step ?? -1;
      for (const c of steps) if (c.step > targetStep && statSync(c.dir, { bigint: true }).mtimeNs > l.mtimeNs) candidates.push(c.dir);
      candidates.push(target);
    }
  } catch { /* none */ }
  for (const c of steps) if (!candidates.includes(c.dir)) candidates.push(c.dir);
  for (const dir of candidates) {
    try {
      return readCheckpointDir(dir);
    } catch (e) {
      // A readable checkpoint with NaN / Inf inside is refused, not skipped: continuing from an older one
      // would silently throw steps away (the message names the file and the tensor).
      if (e instanceof NonFiniteError) throw e;
      warn(`skipping checkpoint ${dir}: ${(e as Error).message}`);
    }
  }
  return null;
}
