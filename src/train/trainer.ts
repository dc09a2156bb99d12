// The loop both trainers share: steps until max_steps (or Ctrl-C), logging every value to the JSONL log,
// the progress bar, checkpoints every N steps (keeping the last K), image grids every N steps, the loss
// curve every few steps. A first Ctrl-C (SIGINT) finishes the running step, writes a checkpoint and returns;
// a second one exits at once. A step that meets a NaN or an infinity (src/train/finite.ts) ends the run with
// that message and the name of the last good checkpoint; nothing is written after it.

import * as T from '../engine/index.js';
import { MetricsLogger } from './logger.js';
import { createProgress } from './progress.js';
import { stepDirName } from './checkpoint.js';
import { NonFiniteError } from './finite.js';

export interface LoopSettings {
  startStep: number;
  maxSteps: number;
  ckptEvery: number;
  imageEvery: number;
  curveEvery: number;
  logEvery: number;
  /** Keys shown on the progress bar (the first present ones). */
  barKeys: string[];
  tty: boolean;
  quiet: boolean;
  /** Stop after this many steps of this process (tests; null = run to maxSteps). */
  stopAfter?: number | null;
  /** Data-parallel runs: whether any rank wants to stop (so that all stop at the same step). */
  anyStops?: (stop: boolean) => boolean;
}

export interface LoopHooks {
  /** One training step (one optimizer step of every optimizer); returns its logged values. */
  step(globalStep: number): Promise<Record<string, number>>;
  /** Write a checkpoint of the state after `globalStep` steps. */
  save(globalStep: number): void;
  /** Write an image grid for `globalStep`. */
  images(globalStep: number): void;
}

export interface LoopResult {
  globalStep: number;
  interrupted: boolean;
  seconds: number;
  stepsRun: number;
  itPerSec: number;
}

/** `logger` is null on the ranks of a data-parallel run that do not write (all but rank 0). */
export async function runLoop(s: LoopSettings, h: LoopHooks, logger: MetricsLogger | null, say: (line: string) => void): Promise<LoopResult> {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      process.stderr.write('\nsecond interrupt: exiting without a checkpoint\n');
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write('\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);
  const bar = createProgress({ total: s.maxSteps, start: s.startStep, tty: s.tty, every: s.logEvery, quiet: s.quiet });
  const t0 = Date.now();
  let step = s.startStep;
  let savedAt = -1;
  // A NaN / Inf met by a step or by a checkpoint write: name the last checkpoint that was written whole.
  const stop = (e: unknown, at: number): never => {
    if (!(e instanceof NonFiniteError)) throw e;
    const good = savedAt >= 0 ? savedAt : s.startStep > 0 ? s.startStep : null;
    const where = good === null ? 'no checkpoint was written yet' : `the last good checkpoint is ${stepDirName(good)} (after step ${good})`;
    throw new NonFiniteError(`${e.message}. Training stopped at step ${at} without writing this state; ${where}. Lower the learning rate (model.base_learning_rate) or check the data before resuming.`, e.step);
  };
  const save = (at: number): void => {
    try {
      h.save(at);
    } catch (e) {
      stop(e, at);
    }
  };
  try {
    while (step < s.maxSteps && !(s.anyStops ? s.anyStops(interrupted) : interrupted) && (s.stopAfter == null || step - s.startStep < s.stopAfter)) {
      const values = await h.step(step).catch((e) => stop(e, step + 1));
      step++;
      logger?.log({ step, ...values });
      const shown: Record<string, number> = {};
      for (const k of s.barKeys) if (typeof values[k] === 'number') shown[k.replace(/^train\//, '')] = values[k];
      bar.update(step, shown);
      if (s.curveEvery > 0 && step % s.curveEvery === 0) logger?.writeCurve();
      if (s.imageEvery > 0 && step % s.imageEvery === 0) h.images(step);
      if (s.ckptEvery > 0 && step % s.ckptEvery === 0) {
        save(step);
        savedAt = step;
      }
      // Let signal handlers run between steps (the step itself never yields to the event loop).
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
  }
  interrupted ||= step < s.maxSteps && (s.stopAfter == null || step - s.startStep < s.stopAfter);
  if (savedAt !== step) save(step);
  logger?.writeCurve();
  const seconds = (Date.now() - t0) / 1000;
  const stepsRun = step - s.startStep;
  const itPerSec = seconds > 0 ? stepsRun / seconds : 0;
  say(`${interrupted ? 'interrupted at' : 'finished at'} step ${step} (${stepsRun} steps in ${seconds.toFixed(1)} s, ${itPerSec.toFixed(2)} it/s)`);
  return { globalStep: step, interrupted, seconds, stepsRun, itPerSec };
}

/** The per-step RNG streams of a trainer, saved in checkpoints. */
export function rngStates(gens: Record<string, T.Generator>): Record<string, number[]> {
  const out: Record<string, number[]> = { default: T.defaultGenerator.getState() };
  for (const [k, g] of Object.entries(gens)) out[k] = g.getState();
  return out;
}

export function restoreRng(states: Record<string, number[]>, gens: Record<string, T.Generator>, source: string): void {
  for (const k of ['default', ...Object.keys(gens)]) {
    const st = states[k];
    if (!st) throw new Error(`${source}: no RNG state "${k}" in the training state`);
    (k === 'default' ? T.defaultGenerator : gens[k]).setState(st);
  }
}

/** Sum of squared gradient entries → the global L2 norm (logged as grad_norm). */
export function gradNorm(params: Iterable<T.Tensor>): number {
  let s = 0;
  for (const p of params) {
    if (!p.grad) continue;
    const d = T.contiguousData(p.grad) as Float32Array;
    for (let i = 0; i < d.length; i++) s += d[i] * d[i];
  }
  return Math.sqrt(s);
}
