// Helpers of the kill / resume tests: `ldm train` child processes, a watcher that timestamps what appears in a
// run's checkpoints folder (inotify through fs.watch, so a kill can land while a checkpoint is being written),
// and the completeness check of every checkpoint folder left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listCheckpoints, readCheckpointDir } from '../../src/train/checkpoint.js';
import { Rng } from '../../scripts/fuzz/rng.js';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(repo, 'bin', 'ldm.mjs');

/** The seeded moments of the kills (the fuzz harness's mulberry32). */
export function seededRandom(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

export interface Child {
  proc: ChildProcess;
  started: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `ldm <args>` as a child process (one kernel thread, so that runs compare bit for bit). */
export function ldmChild(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, [bin, ...args], { cwd: repo, env: { ...process.env, LDM_NUM_THREADS: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => void (err += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, started: Date.now(), stderr: () => err, exited };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The one run folder under logdir (waits for the trainer to create it). */
export async function runFolder(logdir: string, child: Child, timeoutMs = 120_000): Promise<string> {
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await sleep(10)) {
    const runs = existsSync(logdir) ? readdirSync(logdir).filter((n) => existsSync(path.join(logdir, n, 'checkpoints'))) : [];
    if (runs.length === 1) return path.join(logdir, runs[0]);
    if (child.proc.exitCode !== null) throw new Error(`ldm train exited (${child.proc.exitCode}) before creating its run folder:\n${child.stderr()}`);
  }
  throw new Error(`no run folder under ${logdir} after ${timeoutMs} ms`);
}

export interface CkptEvent {
  /** 'begin': a `.tmp-step-*` folder appeared (a write started); 'done': a `step-*` folder appeared (renamed). */
  kind: 'begin' | 'done';
  step: number;
  at: number;
}

/** Timestamps every checkpoint write that starts and ends in `dir`; `on` sees each event as it happens. */
export class CheckpointWatcher {
  readonly events: CkptEvent[] = [];
  private seen = new Set<string>();
  private w: FSWatcher;
  on: ((e: CkptEvent) => void) | null = null;

  constructor(readonly dir: string) {
    for (const n of readdirSync(dir)) this.seen.add(n);
    this.w = watch(dir, () => this.scan());
  }

  private scan(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (this.seen.has(n)) continue;
      this.seen.add(n);
      const m = /^(\.tmp-)?step-(\d+)/.exec(n);
      if (!m) continue;
      const e: CkptEvent = { kind: m[1] ? 'begin' : 'done', step: Number(m[2]), at: Date.now() };
      this.events.push(e);
      this.on?.(e);
    }
    // Names that went away may come again (a step written anew after a resume).
    for (const n of [...this.seen]) if (!names.includes(n)) this.seen.delete(n);
  }

  close(): void {
    this.w.close();
  }
}

/**
 * Every step-* folder in dir is complete and readable (both safetensors files parse, agree on the step, hold only
 * finite values; config.yaml present) and `last` names one of them. Returns the steps and the left-over names.
 */
export function checkAllComplete(dir: string): { steps: number[]; last: number | null; leftovers: string[] } {
  const steps = listCheckpoints(dir);
  for (const c of steps) {
    const ck = readCheckpointDir(c.dir); // throws on a truncated, missing or non-finite file
    if (ck.state.globalStep !== c.step) throw new Error(`${c.dir}: holds step ${ck.state.globalStep}`);
    if (!statSync(path.join(c.dir, 'config.yaml')).isFile()) throw new Error(`${c.dir}: no config.yaml`);
  }
  let last: number | null = null;
  let hasLink = false;
  try {
    hasLink = lstatSync(path.join(dir, 'last')).isSymbolicLink();
  } catch { /* no link */ }
  if (hasLink) {
    const target = readlinkSync(path.join(dir, 'last'));
    const hit = steps.find((c) => path.basename(c.dir) === target);
    if (!hit) throw new Error(`${dir}/last -> ${target}: not a complete step folder (have ${steps.map((c) => c.step).join(', ')})`);
    last = hit.step;
  } else if (steps.length) {
    throw new Error(`${dir}: step folders but no last link`);
  }
  return { steps: steps.map((c) => c.step), last, leftovers: readdirSync(dir).filter((n) => n.startsWith('.tmp-')) };
}
