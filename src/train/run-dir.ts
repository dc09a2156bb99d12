// The run folder, laid out like main.py's: logs/<YYYY-MM-DDTHH-MM-SS>_<name>/
//   checkpoints/   step folders and `last` (src/train/checkpoint.ts)
//   configs/       <time>-project.yaml (model, data, training: ready for `ldm sample --config`) and <time>-lightning.yaml
//   images/        sample grids / reconstructions every N steps
//   metrics.jsonl  every logged value, one JSON object per line;  loss.svg  the loss curves

import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { toYaml, type Doc } from './config.js';

export interface RunDir {
  root: string;
  checkpoints: string;
  configs: string;
  images: string;
  metrics: string;
  curve: string;
}

/** main.py's timestamp format: %Y-%m-%dT%H-%M-%S (local time). */
export function runTimestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

export function runPaths(root: string): RunDir {
  return {
    root, checkpoints: path.join(root, 'checkpoints'), configs: path.join(root, 'configs'), images: path.join(root, 'images'),
    metrics: path.join(root, 'metrics.jsonl'), curve: path.join(root, 'loss.svg'),
  };
}

/** Create logs/<time>_<name> (a numeric suffix if that exact second's folder exists). */
export function createRunDir(logdir: string, name: string, now = new Date()): RunDir {
  if (!/^[\w.+-]+$/.test(name)) throw new Error(`run name "${name}": use letters, digits, ".", "_", "+" or "-"`);
  let root = path.join(logdir, `${runTimestamp(now)}_${name}`);
  for (let i = 1; existsSync(root); i++) root = path.join(logdir, `${runTimestamp(now)}_${name}-${i}`);
  const r = runPaths(root);
  for (const d of [r.checkpoints, r.configs, r.images]) mkdirSync(d, { recursive: true });
  return r;
}

/** Write the merged config as main.py does: the lightning section apart from the rest. */
export function writeRunConfigs(r: RunDir, doc: Doc, now = new Date()): { project: string; lightning: string } {
  const ts = runTimestamp(now);
  const { lightning, ...project } = doc;
  const pf = path.join(r.configs, `${ts}-project.yaml`), lf = path.join(r.configs, `${ts}-lightning.yaml`);
  writeFileAtomic(pf, new TextEncoder().encode(toYaml(project)));
  writeFileAtomic(lf, new TextEncoder().encode(toYaml({ lightning: lightning ?? {} })));
  return { project: pf, lightning: lf };
}

/** The configs of a run folder, oldest first (merged in that order on resume, as main.py does). */
export function runConfigFiles(root: string): string[] {
  const dir = path.join(root, 'configs');
  if (!existsSync(dir)) throw new Error(`${root}: not a run folder (no configs/)`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => path.join(dir, f));
  if (files.length === 0) throw new Error(`${dir}: no config files`);
  return files;
}

/**
 * `--resume` argument → run folder: a run folder, a checkpoint folder inside one (…/checkpoints/step-N or last),
 * or `latest` (the newest run under logdir, optionally only runs named `name`).
 */
export function resolveResume(arg: string, logdir: string, name?: string): { root: string; checkpoint: string | null } {
  if (arg === 'latest') {
    if (!existsSync(logdir)) throw new Error(`--resume latest: no run folder under ${logdir}`);
    const runs = readdirSync(logdir)
      .filter((n) => /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_/.test(n) && statSync(path.join(logdir, n)).isDirectory())
      .filter((n) => !name || n.slice(20) === name || n.slice(20).startsWith(`${name}-`))
      .sort();
    if (runs.length === 0) throw new Error(`--resume latest: no run folder${name ? ` named ${name}` : ''} under ${logdir}`);
    return { root: path.join(logdir, runs[runs.length - 1]), checkpoint: null };
  }
  if (!existsSync(arg)) throw new Error(`--resume: ${arg} does not exist`);
  const abs = path.resolve(arg);
  if (existsSync(path.join(abs, 'configs'))) return { root: abs, checkpoint: null };
  const parent = path.dirname(abs);
  if (path.basename(parent) === 'checkpoints' && existsSync(path.join(path.dirname(parent), 'configs'))) {
    return { root: path.dirname(parent), checkpoint: abs };
  }
  throw new Error(`--resume: ${arg} is neither a run folder (with configs/ and checkpoints/) nor a checkpoint folder inside one`);
}
