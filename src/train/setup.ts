// What both trainers do before the first step: read the config (files, or a run folder's saved configs on
// resume, then the command-line overrides), open or create the run folder, settle the step budget, the
// learning rate (main.py's scaling, printed) and the seed, and find the checkpoint to resume from.

import path from 'node:path';
import { ConfigError } from '../io/config.js';
import { findLatestCheckpoint, readCheckpointDir, type LoadedCheckpoint } from './checkpoint.js';
import {
  applyOverrides, baseLearningRate, parseTrainer, parseTrainingSection, readConfigFiles, scaledLearningRate, toYaml,
  type Doc, type TrainerSettings, type TrainingSection,
} from './config.js';
import { createRunDir, resolveResume, runConfigFiles, runPaths, writeRunConfigs, type RunDir } from './run-dir.js';
import { Shard } from './data-parallel.js';
import { processGroup } from './mpi.js';

export interface TrainOptions {
  /** Config files, merged in order (main.py's --base). Optional with `resume` (the run's configs are used). */
  config?: string[];
  /** `key.path=value` overrides, applied after the files. */
  overrides?: string[];
  /** Run name (default: the first config file's name). */
  name?: string;
  /** Parent of the run folders (default `logs`). */
  logdir?: string;
  /** A run folder, a checkpoint folder inside one, or `latest`. */
  resume?: string;
  /** Overrides lightning.trainer.max_steps. */
  maxSteps?: number;
  /** Seed of initialisation, data order and every random draw (main.py's default 23). */
  seed?: number;
  /** main.py's --scale_lr (default true). */
  scaleLr?: boolean;
  ckptEvery?: number;
  keepLast?: number;
  imageEvery?: number;
  lpipsWeights?: string;
  /** Stop (with a checkpoint) after this many steps of this process. */
  stopAfter?: number;
  quiet?: boolean;
  /** Draw a progress bar (default: stderr is a terminal). */
  tty?: boolean;
  /** Where notices go (default stderr). */
  log?: (line: string) => void;
  /** Data-parallel over MPI (default: when launched by mpirun). Rank 0 writes the run folder, logs and images. */
  distributed?: boolean;
}

export interface RunContext {
  doc: Doc;
  run: RunDir;
  trainer: TrainerSettings;
  training: TrainingSection;
  maxSteps: number;
  seed: number;
  scaleLr: boolean;
  resume: LoadedCheckpoint | null;
  /** Where a new run's folder will be created (by openRun). */
  newRun: { logdir: string; name: string } | null;
  configYaml: string;
  say: (line: string) => void;
  tty: boolean;
  quiet: boolean;
  /** This process's part of a data-parallel run (a single process is rank 0 of 1). */
  shard: Shard;
}

export function prepareRun(o: TrainOptions, kind: string): RunContext {
  const shard = new Shard(processGroup(o.distributed));
  // Only rank 0 talks: the other ranks of a data-parallel run compute in silence.
  const say = !shard.isMain ? () => {} : o.log ?? ((s: string) => void process.stderr.write(`${s}\n`));
  if (shard.pg.size > 1) say(`data-parallel: ${shard.pg.size} ranks (${shard.pg.library.split(',')[0]})`);
  const notices = new Set<string>();
  const notice = (s: string) => {
    if (!notices.has(s)) say(`notice: ${s}`);
    notices.add(s);
  };
  const logdir = o.logdir ?? 'logs';
  let doc: Doc;
  let run: RunDir;
  let resume: LoadedCheckpoint | null = null;
  if (o.resume) {
    const r = resolveResume(o.resume, logdir, o.name);
    run = runPaths(r.root);
    doc = readConfigFiles([...runConfigFiles(r.root), ...(o.config ?? [])]);
    resume = r.checkpoint ? readCheckpointDir(r.checkpoint) : findLatestCheckpoint(run.checkpoints, say);
    if (!resume) throw new Error(`--resume ${o.resume}: ${run.checkpoints} holds no complete checkpoint`);
    if (resume.state.kind !== kind) throw new Error(`--resume: ${resume.dir} was written by the ${resume.state.kind} trainer, not ${kind}`);
    say(`resuming ${run.root} from ${path.basename(resume.dir)} (step ${resume.state.globalStep}, epoch ${resume.state.epoch})`);
  } else {
    if (!o.config?.length) throw new ConfigError('give --config <file.yaml> (or --resume <run folder | latest>)');
    doc = readConfigFiles(o.config);
  }
  doc = applyOverrides(doc, o.overrides ?? []);
  if (o.maxSteps !== undefined) doc = applyOverrides(doc, [`lightning.trainer.max_steps=${o.maxSteps}`]);
  const training = parseTrainingSection(doc);
  if (o.ckptEvery !== undefined) training.ckpt_every = o.ckptEvery;
  if (o.keepLast !== undefined) training.keep_last = o.keepLast;
  if (o.imageEvery !== undefined) training.image_every = o.imageEvery;
  if (o.lpipsWeights !== undefined) training.lpips_weights = o.lpipsWeights;
  const trainer = parseTrainer(doc, notice);
  if (trainer.maxSteps === null) {
    if (trainer.maxEpochs !== null) throw new ConfigError('lightning.trainer.max_epochs without max_steps: give lightning.trainer.max_steps (or --max-steps); epochs are counted but do not end training here');
    throw new ConfigError('no step budget: set lightning.trainer.max_steps in the config or pass --max-steps N');
  }
  baseLearningRate(doc); // validated before any work
  const seed = resume ? Number((resume.state.extra as { seed?: number }).seed ?? o.seed ?? 23) : o.seed ?? 23;
  if (resume && o.seed !== undefined && o.seed !== seed) throw new Error(`--seed ${o.seed}: the run being resumed used seed ${seed} (a different seed would not continue it)`);
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError(`--seed: expected a non-negative integer, got ${seed}`);
  const scaleLr = o.scaleLr ?? true;
  const newRun = o.resume ? null : { logdir, name: o.name ?? path.basename(o.config![0]).split('.')[0] };
  if (newRun && !/^[\w.+-]+$/.test(newRun.name)) throw new ConfigError(`run name "${newRun.name}": use letters, digits, ".", "_", "+" or "-"`);
  const ctx: RunContext = {
    doc, run: o.resume ? run! : runPaths(''), newRun, trainer, training, maxSteps: trainer.maxSteps, seed, scaleLr, resume, configYaml: toYaml(doc), say,
    tty: shard.isMain && (o.tty ?? (!o.quiet && !!process.stderr.isTTY)), quiet: !!o.quiet || !shard.isMain, shard,
  };
  return ctx;
}

/** Create the run folder (a new run) and write the merged configs: called once the model and data are built. */
export function openRun(ctx: RunContext): void {
  if (!ctx.shard.isMain) return;
  if (ctx.newRun) ctx.run = createRunDir(ctx.newRun.logdir, ctx.newRun.name);
  ctx.newRun = null;
  writeRunConfigs(ctx.run, ctx.doc, new Date());
}

/** main.py's learning-rate rule (batch = the per-rank batch, × the number of ranks), printed with its formula. */
export function learningRate(ctx: RunContext, batchSize: number): number {
  const { lr, message } = scaledLearningRate(baseLearningRate(ctx.doc), batchSize, ctx.trainer.accumulate, ctx.scaleLr, ctx.shard.pg.size);
  for (const l of message.split('\n')) ctx.say(l);
  return lr;
}
