// `ldm train`: train a LatentDiffusion model from a reference-style config (model / data / lightning sections)
// — a thin layer over trainLDM (src/train/train-ldm.ts). The argument parser is shared with
// `ldm train-autoencoder`.

import { ConfigError } from '../io/config.js';
import type { TrainOptions } from '../train/setup.js';
import { trainLDM } from '../train/train-ldm.js';

export const TRAIN_OPTIONS = `  --config FILE.yaml   config (repeatable: merged in order, like main.py --base)          (required unless --resume)
  --name NAME          run name: logs/<time>_<NAME>                                       (default: the config's file name)
  --logdir DIR         where run folders go                                               (default: logs)
  --resume RUN|latest  continue a run exactly (a run folder, one of its checkpoint folders, or the newest run)
  --max-steps N        overrides lightning.trainer.max_steps                              (default: from the config)
  --seed N             seed of initialisation, data order and all random draws           (default: 23, as main.py)
  --scale-lr true|false  lr = accumulate_grad_batches × ngpu × batch_size × base_learning_rate   (default: true)
  --no-scale-lr        same as --scale-lr false
  --ckpt-every N       checkpoint every N steps                                           (default: training.ckpt_every, 500)
  --keep-last K        keep the last K checkpoints                                        (default: training.keep_last, 3)
  --image-every N      image grid every N steps, 0 = never        (default: training.image_every or image_logger's batch_frequency)
  --quiet              no progress output
  --distributed        data-parallel over MPI: mpirun -np N ldm train … (automatic under mpirun; batch_size is per
                       rank, the lr scales × N; rank 0 writes the run folder)   (needs Open MPI: see docs/distributed.md)
  -h, --help           this text
  key.path=value       config overrides (typed like YAML: 64, 1e-4, true, [1,2], null), e.g.
                       model.params.unet_config.params.model_channels=64  lightning.trainer.max_steps=2000`;

export const TRAIN_USAGE = `usage: ldm train --config <config.yaml> [--name N] [--resume <run dir | latest>] [--max-steps N] [--seed N] [key=value …]
  Trains ldm.models.diffusion.ddpm.LatentDiffusion (model.params.first_stage_config.params.ckpt_path: the trained
  autoencoder, loaded and frozen). Writes logs/<time>_<name>/{checkpoints, configs, images}, metrics.jsonl, loss.svg.
  Ctrl-C writes a checkpoint and stops; --resume continues with the same losses as an uninterrupted run.
${TRAIN_OPTIONS}
  config extras (training: section): cond_drop_prob, uncond_label, uncond_prompt, cache_latents (auto|true|false),
    ckpt_every, keep_last, image_every, max_images, sample_steps, sample_scale, curve_every, ema_decay`;

export class TrainUsageError extends Error {}

const VALUE = new Set(['config', 'name', 'logdir', 'resume', 'max-steps', 'seed', 'scale-lr', 'ckpt-every', 'keep-last', 'image-every', 'lpips-weights', 'stop-after']);
const FLAGS = new Set(['no-scale-lr', 'quiet', 'help', 'distributed']);

export function parseTrainArgs(argv: string[], extra: { lpips?: boolean } = {}): TrainOptions & { help: boolean } {
  const o: TrainOptions & { help: boolean } = { help: false, overrides: [], config: [] };
  const intOf = (k: string, v: string, min = 0): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new TrainUsageError(`--${k} expects an integer ≥ ${min}, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      o.help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      if (a.includes('=')) {
        o.overrides!.push(a);
        continue;
      }
      throw new TrainUsageError(`unexpected argument "${a}" (options start with --, overrides look like key.path=value)`);
    }
    const eq = a.indexOf('=');
    const key = a.slice(2, eq === -1 ? undefined : eq);
    if (FLAGS.has(key)) {
      if (eq !== -1) throw new TrainUsageError(`--${key} takes no value`);
      if (key === 'help') o.help = true;
      else if (key === 'quiet') o.quiet = true;
      else if (key === 'distributed') o.distributed = true;
      else o.scaleLr = false;
      continue;
    }
    if (!VALUE.has(key) || (key === 'lpips-weights' && !extra.lpips)) throw new TrainUsageError(`unknown option --${key}`);
    let v: string;
    if (eq !== -1) v = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new TrainUsageError(`--${key} needs a value`);
      v = argv[++i];
    }
    switch (key) {
      case 'config': o.config!.push(v); break;
      case 'name': o.name = v; break;
      case 'logdir': o.logdir = v; break;
      case 'resume': o.resume = v; break;
      case 'max-steps': o.maxSteps = intOf(key, v, 1); break;
      case 'seed': o.seed = intOf(key, v); break;
      case 'ckpt-every': o.ckptEvery = intOf(key, v); break;
      case 'keep-last': o.keepLast = intOf(key, v, 1); break;
      case 'image-every': o.imageEvery = intOf(key, v); break;
      case 'stop-after': o.stopAfter = intOf(key, v, 1); break;
      case 'lpips-weights': o.lpipsWeights = v; break;
      case 'scale-lr':
        if (v !== 'true' && v !== 'false') throw new TrainUsageError(`--scale-lr expects true or false, got "${v}"`);
        if (o.scaleLr === false && v === 'true') throw new TrainUsageError('--scale-lr true contradicts --no-scale-lr');
        o.scaleLr = v === 'true';
        break;
    }
  }
  if (o.resume && o.name && o.resume !== 'latest') throw new TrainUsageError('--name and --resume <folder> exclude each other (the run keeps its name; --name with --resume latest picks the newest run of that name)');
  return o;
}

/** Run a trainer from argv: usage errors → 2, config errors → 2 with the message, success → 0 (130 when interrupted). */
export async function runTrainCommand(cmd: string, usage: string, argv: string[], train: (o: TrainOptions) => Promise<{ interrupted: boolean }>, extra: { lpips?: boolean } = {}): Promise<number> {
  let o: ReturnType<typeof parseTrainArgs>;
  try {
    o = parseTrainArgs(argv, extra);
  } catch (e) {
    if (e instanceof TrainUsageError) {
      console.error(`ldm ${cmd}: ${e.message}\n${usage}`);
      return 2;
    }
    throw e;
  }
  if (o.help) {
    console.log(usage);
    return 0;
  }
  if (!o.config!.length) delete o.config;
  try {
    const r = await train(o);
    return r.interrupted ? 130 : 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ldm ${cmd}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

export function trainCommand(argv: string[]): Promise<number> {
  return runTrainCommand('train', TRAIN_USAGE, argv, trainLDM);
}
