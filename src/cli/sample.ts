// `ldm sample`: load a LatentDiffusion (official config.yaml + .ckpt/.safetensors, or a model folder),
// run the task its conditioning calls for, write one PNG per sample and a grid, with the generation
// parameters in a PNG text chunk. Progress: a bar with it/s and ETA on a terminal, plain lines otherwise.

import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { SAMPLERS, type SamplerName } from '../diffusion/sample.js';
import { ddimTimesteps } from '../diffusion/schedules.js';
import { readYaml } from '../io/config.js';
import type { StepCallback } from '../diffusion/sampler.js';
import { readCheckpoint } from '../io/ckpt.js';
import { loadCheckpointInto } from '../loader/checkpoint.js';
import { makeGrid, readImage, writePng } from '../io/image.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { buildFromConfigFile } from '../models/targets.js';
import type { UNetBuildOptions } from '../models/unet/build.js';
import { skipInit } from '../nn/init.js';
import * as tasks from '../tasks/index.js';

export const SAMPLE_USAGE = `usage: ldm sample --config <config.yaml> --ckpt <model.ckpt|.safetensors|model folder> [task inputs] [options]
  The task follows from the model's conditioning:
    unconditional         (no input)                     --n, --H, --W
    class-conditional     --class 25[,187,…]             (repeatable; --uncond-class for guidance)
    text-to-image         --prompt "…" --vocab vocab.txt (bert-base-uncased vocab.txt; repeatable --prompt)
    inpainting            --image photo.png --mask mask.png   (white = fill; known pixels are kept exactly)
    super-resolution      --lr-image small.png           (output f× larger; --tile auto|on|off)
    semantic synthesis    --segmentation labels.png      (pixel value = class index, 255 = unlabelled)
    img2img (any of unconditional / class / text models)  --init-image in.png --strength 0.75
  options:
    --sampler ddim|plms|dpm++|ddpm   (default ddim)       --steps N   (default 50; ddpm runs every timestep)
    --eta E        DDIM eta (default 0; 1 for unconditional and super-resolution, as the reference scripts)
    --scale S      classifier-free guidance (default 5 for text, 3 for class models with a "no class" label, else 1)
    --seed N       (default 42)     --n N   samples per prompt / class / input (default 1)
    --H N --W N    image size (default: the training size; multiples of f × the UNet's downsampling)
    --ema | --no-ema   sample with the EMA weights (default: when the config has use_ema and the file has them)
    --out DIR      output folder (default outputs)     --name PREFIX  file name prefix (default sample)
    --x-t FILE.safetensors[:name]   start from this x_T (e.g. a reference's fixed code)
    --save-latents FILE.safetensors also write the final latents (samples) and x_T
    --legacy-heads run a legacy config's SpatialTransformers with 1 head × C, as the Dec-2021 code that trained
                   cin256 / text2img256 did (LDM-REFERENCE §7.2); default: the HEAD code's head count
    --no-grid      skip the grid image          --quiet   no progress output`;

interface Parsed {
  values: Map<string, string[]>;
  flags: Set<string>;
}

const VALUE_OPTS = new Set([
  'config', 'ckpt', 'model', 'prompt', 'class', 'uncond-class', 'image', 'mask', 'lr-image', 'segmentation', 'init-image', 'strength',
  'sampler', 'steps', 'eta', 'scale', 'seed', 'n', 'H', 'W', 'out', 'name', 'vocab', 'x-t', 'save-latents', 'tile',
]);
const FLAG_OPTS = new Set(['ema', 'no-ema', 'no-grid', 'quiet', 'help', 'legacy-heads']);

export function parseSampleArgs(argv: string[]): Parsed {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      flags.add('help');
      continue;
    }
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}" (options start with --)`);
    const eq = a.indexOf('=');
    const key = a.slice(2, eq === -1 ? undefined : eq);
    if (FLAG_OPTS.has(key)) {
      if (eq !== -1) throw new UsageError(`--${key} takes no value`);
      flags.add(key);
      continue;
    }
    if (!VALUE_OPTS.has(key)) throw new UsageError(`unknown option --${key}`);
    let v: string;
    if (eq !== -1) v = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`--${key} needs a value`);
      v = argv[++i];
    }
    values.set(key, [...(values.get(key) ?? []), v]);
  }
  if (flags.has('ema') && flags.has('no-ema')) throw new UsageError('give either --ema or --no-ema');
  return { values, flags };
}

export class UsageError extends Error {}

function one(p: Parsed, key: string): string | undefined {
  const v = p.values.get(key);
  if (v && v.length > 1) throw new UsageError(`--${key} given ${v.length} times`);
  return v?.[0];
}

function num(p: Parsed, key: string, kind: 'int' | 'float' = 'float'): number | undefined {
  const v = one(p, key);
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (kind === 'int' && !Number.isInteger(x))) throw new UsageError(`--${key} expects ${kind === 'int' ? 'an integer' : 'a number'}, got "${v}"`);
  return x;
}

/** --ckpt may be a file or a model folder (config.yaml + model.ckpt / last.ckpt / *.safetensors). */
export function resolveModelFiles(ckptArg: string | undefined, configArg: string | undefined): { config: string; ckpt: string } {
  if (!ckptArg) throw new UsageError('--ckpt is required (a .ckpt / .safetensors file, or a model folder)');
  if (!existsSync(ckptArg)) throw new UsageError(`--ckpt: ${ckptArg} does not exist`);
  let ckpt = ckptArg;
  let config = configArg;
  if (statSync(ckptArg).isDirectory()) {
    const files = readdirSync(ckptArg);
    const pick = ['model.ckpt', 'last.ckpt', 'model.safetensors'].find((f) => files.includes(f)) ?? files.find((f) => f.endsWith('.ckpt') || f.endsWith('.safetensors'));
    if (!pick) throw new UsageError(`--ckpt: ${ckptArg} holds no .ckpt or .safetensors file`);
    ckpt = path.join(ckptArg, pick);
    if (!config && files.includes('config.yaml')) config = path.join(ckptArg, 'config.yaml');
  }
  if (!config) {
    const beside = path.join(path.dirname(ckpt), 'config.yaml');
    if (existsSync(beside)) config = beside;
    else throw new UsageError('--config is required (no config.yaml beside the checkpoint)');
  }
  if (!existsSync(config)) throw new UsageError(`--config: ${config} does not exist`);
  return { config, ckpt };
}

/** Build the model and load its weights; returns whether the EMA weights were used. */
export function loadModel(config: string, ckptPath: string, ema: boolean | 'auto', log: (s: string) => void, build: UNetBuildOptions = {}): { model: LatentDiffusion; usedEma: boolean } {
  // Weights come from the file: skip the random initialisation.
  const model = skipInit(() => buildFromConfigFile<LatentDiffusion>(config, build));
  if (!(model instanceof LatentDiffusion)) throw new Error(`${config}: not a LatentDiffusion config (model.target must be ldm.models.diffusion.ddpm.LatentDiffusion)`);
  const ck = readCheckpoint(ckptPath);
  try {
    const hasEma = [...ck.stateDict.keys()].some((k) => k.startsWith('model_ema.') && k !== 'model_ema.decay' && k !== 'model_ema.num_updates');
    let useEma: boolean;
    if (ema === 'auto') {
      useEma = model.config.use_ema && hasEma;
      if (model.config.use_ema && !hasEma) log(`note: the config has use_ema but ${path.basename(ckptPath)} has no model_ema.* weights; using the live weights`);
    } else {
      useEma = ema;
      if (ema && !hasEma) throw new Error(`--ema: ${ckptPath} has no EMA weights (model_ema.*); use --no-ema`);
    }
    loadCheckpointInto(model, ck, { ema: useEma });
    return { model: model.eval(), usedEma: useEma };
  } finally {
    ck.close();
  }
}

/** A terminal progress bar (it/s, ETA) or plain lines. */
export function progressReporter(label: string, write: (s: string) => void, tty: boolean): { onStep: StepCallback; done: () => void } {
  const t0 = Date.now();
  let last = -1;
  return {
    onStep: ({ step, total }) => {
      const n = step + 1;
      const el = (Date.now() - t0) / 1000;
      const rate = el > 0 ? n / el : 0;
      const eta = rate > 0 ? (total - n) / rate : 0;
      const stats = `${n}/${total} ${rate.toFixed(2)} it/s ETA ${formatSeconds(eta)}`;
      if (tty) {
        const width = 30, fill = Math.round((n / total) * width);
        write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${stats}   `);
      } else {
        const every = Math.max(1, Math.ceil(total / 20));
        if (n === total || n % every === 0 || last < 0) write(`${label}: step ${stats}\n`);
      }
      last = n;
    },
    done: () => {
      if (tty && last >= 0) write('\n');
    },
  };
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s - 60 * m).toString().padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

function readXT(spec: string): T.Tensor {
  const i = spec.lastIndexOf(':');
  const hasName = i > 1 && !spec.slice(i + 1).includes('/');
  const file = hasName ? spec.slice(0, i) : spec;
  if (!existsSync(file)) throw new UsageError(`--x-t: ${file} does not exist`);
  const ts = readSafetensors(file).tensors;
  const name = hasName ? spec.slice(i + 1) : ts.has('x_T') ? 'x_T' : ts.size === 1 ? [...ts.keys()][0] : undefined;
  if (!name || !ts.has(name)) throw new UsageError(`--x-t: ${file} has no tensor ${name ?? '(name it: FILE:name)'}; it has ${[...ts.keys()].join(', ')}`);
  return T.cast(ts.get(name)!, 'float32');
}

function imageArg(p: Parsed, key: string) {
  const f = one(p, key);
  if (f === undefined) return undefined;
  if (!existsSync(f)) throw new UsageError(`--${key}: ${f} does not exist`);
  return readImage(f);
}

export async function sampleCommand(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parseSampleArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ldm sample: ${e.message}\n${SAMPLE_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (p.flags.has('help')) {
    console.log(SAMPLE_USAGE);
    return 0;
  }
  try {
    return runSample(p);
  } catch (e) {
    if (e instanceof UsageError || e instanceof tasks.TaskError) {
      console.error(`ldm sample: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/** Reject a DDIM/PLMS step count before spending seconds on loading the model. */
function checkDDIMSteps(config: string, steps: number): void {
  const params = (readYaml(config).model as { params?: { timesteps?: number } } | undefined)?.params;
  try {
    ddimTimesteps('uniform', steps, params?.timesteps ?? 1000);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

function runSample(p: Parsed): number {
  const quiet = p.flags.has('quiet');
  const log = (s: string) => {
    if (!quiet) process.stderr.write(`${s}\n`);
  };
  const sampler = (one(p, 'sampler') ?? 'ddim') as SamplerName;
  if (!SAMPLERS.includes(sampler)) throw new UsageError(`--sampler must be one of ${SAMPLERS.join(', ')}, got "${sampler}"`);
  const stepsArg = num(p, 'steps', 'int');
  if (sampler === 'ddpm' && stepsArg !== undefined) {
    throw new UsageError('--steps does not apply to the ddpm sampler (ancestral sampling runs every timestep); for fewer steps use --sampler ddim --eta 1');
  }
  const { config, ckpt } = resolveModelFiles(one(p, 'ckpt') ?? one(p, 'model'), one(p, 'config'));
  if (sampler === 'ddim' || sampler === 'plms') checkDDIMSteps(config, stepsArg ?? 50);
  const vocab = one(p, 'vocab');
  if (vocab !== undefined && !existsSync(vocab)) throw new UsageError(`--vocab: vocab file ${vocab} does not exist`);
  const xT = one(p, 'x-t') !== undefined ? readXT(one(p, 'x-t')!) : undefined;
  const ema = p.flags.has('ema') ? true : p.flags.has('no-ema') ? false : 'auto';

  const t0 = Date.now();
  const { model, usedEma } = loadModel(config, ckpt, ema, log, p.flags.has('legacy-heads') ? { legacyTransformerHeads: 'single' } : {});
  const task = tasks.modelTask(model);
  log(`loaded ${path.basename(ckpt)} (${task} model, ${(model.numParameters() / 1e6).toFixed(1)} M parameters${usedEma ? ', EMA weights' : ''}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // Inputs given must fit the model's task.
  const given = (k: string) => p.values.has(k);
  const init = imageArg(p, 'init-image');
  const inputsFor: Record<tasks.TaskName, string[]> = {
    unconditional: [], class: ['class', 'uncond-class'], text: ['prompt', 'vocab'], inpainting: ['image', 'mask'], superres: ['lr-image', 'tile'], semantic: ['segmentation'],
  };
  const allowed = new Set(inputsFor[task]);
  for (const [t, keys] of Object.entries(inputsFor)) {
    for (const k of keys) {
      if (given(k) && !allowed.has(k)) {
        throw new tasks.TaskError(`--${k} is for ${t === 'text' ? 'text-to-image' : t} models, but this is ${/^[aeiou]/.test(task) ? 'an' : 'a'} ${task} model (${describeInputs(task)})`);
      }
    }
  }
  if (given('strength') && !init) throw new UsageError('--strength needs --init-image');

  const n = num(p, 'n', 'int') ?? 1;
  const seed = num(p, 'seed', 'int') ?? 42;
  const classes = (p.values.get('class') ?? []).flatMap((s) => s.split(',')).map((s) => {
    const v = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(v)) throw new UsageError(`--class expects integer labels, got "${s}"`);
    return v;
  });
  const uncondClass = num(p, 'uncond-class', 'int');
  const prompts = p.values.get('prompt') ?? [];
  const repeat = <X>(xs: X[]) => xs.flatMap((x) => new Array<X>(n).fill(x));
  let scale = num(p, 'scale');
  if (scale === undefined) {
    if (task === 'text') scale = 5;
    else if (task === 'class') scale = uncondClass !== undefined || tasks.numClasses(model) !== 1000 ? 3 : 1;
    else scale = 1;
  }
  const tty = !quiet && !!process.stderr.isTTY;
  const progress = quiet ? null : progressReporter(sampler, (s) => process.stderr.write(s), tty);
  const common: tasks.SamplingSettings = {
    sampler, steps: stepsArg, eta: num(p, 'eta'), scale, seed, xT, onStep: progress?.onStep,
  };
  const H = num(p, 'H', 'int'), W = num(p, 'W', 'int');

  let r: tasks.TaskResult;
  const t1 = Date.now();
  if (init) {
    const strength = num(p, 'strength') ?? 0.75;
    if ((H !== undefined && H !== init.height) || (W !== undefined && W !== init.width)) throw new UsageError(`--H/--W do not apply with --init-image (its size ${init.width}×${init.height} is used)`);
    r = tasks.sampleImg2Img(model, {
      ...common, init, strength, n, prompts: prompts.length ? repeat(prompts) : undefined, classes: classes.length ? repeat(classes) : undefined, uncondClass, vocabFile: vocab,
    });
  } else {
    switch (task) {
      case 'unconditional':
        r = tasks.sampleUnconditional(model, { ...common, n: xT ? xT.shape[0] : n, H, W });
        break;
      case 'class':
        if (!classes.length) throw new tasks.TaskError('this is a class-conditional model: give --class (e.g. --class 25 or --class 25,187)');
        r = tasks.sampleClassConditional(model, { ...common, classes: repeat(classes), uncondClass, H, W });
        break;
      case 'text':
        if (!prompts.length) throw new tasks.TaskError('this is a text-to-image model: give --prompt "…" (and --vocab <bert-base-uncased vocab.txt>)');
        if (!vocab) throw new tasks.TaskError('text prompts need the bert-base-uncased vocab.txt (one token per line): pass --vocab <file>');
        r = tasks.sampleTextToImage(model, { ...common, prompts: repeat(prompts), vocabFile: vocab, H, W });
        break;
      case 'inpainting': {
        const image = imageArg(p, 'image'), mask = imageArg(p, 'mask');
        if (!image || !mask) throw new tasks.TaskError('this is an inpainting model: give --image and --mask (white = the region to fill)');
        r = tasks.sampleInpainting(model, { ...common, image, mask, n });
        break;
      }
      case 'superres': {
        const lowRes = imageArg(p, 'lr-image');
        if (!lowRes) throw new tasks.TaskError('this is a super-resolution model: give --lr-image');
        const tile = one(p, 'tile') ?? 'auto';
        if (!['auto', 'on', 'off'].includes(tile)) throw new UsageError(`--tile must be auto, on or off, got "${tile}"`);
        r = tasks.sampleSuperResolution(model, { ...common, lowRes, n, tiled: tile === 'auto' ? 'auto' : tile === 'on' });
        break;
      }
      case 'semantic': {
        const segmentation = imageArg(p, 'segmentation');
        if (!segmentation) throw new tasks.TaskError('this is a semantic-synthesis model: give --segmentation (a label-map PNG)');
        r = tasks.sampleSemantic(model, { ...common, segmentation, n });
        break;
      }
    }
  }
  progress?.done();
  const secs = (Date.now() - t1) / 1000;

  const out = one(p, 'out') ?? 'outputs';
  const prefix = one(p, 'name') ?? 'sample';
  mkdirSync(out, { recursive: true });
  const base: Record<string, string> = {
    ...r.params, model_task: task, config: path.basename(config), ckpt: path.basename(ckpt), ema: String(usedEma),
  };
  const written: string[] = [];
  r.images.forEach((im, i) => {
    const file = path.join(out, `${prefix}-${String(i).padStart(4, '0')}.png`);
    writePng(file, im, { parameters: JSON.stringify({ ...base, index: i }), Software: 'ldm-ts' });
    written.push(file);
  });
  if (!p.flags.has('no-grid') && r.images.length > 1) {
    const file = path.join(out, `${prefix}-grid.png`);
    writePng(file, makeGrid(r.images, n > 1 ? n : r.images.length), { parameters: JSON.stringify(base), Software: 'ldm-ts' });
    written.push(file);
  }
  const latents = one(p, 'save-latents');
  if (latents) {
    mkdirSync(path.dirname(path.resolve(latents)), { recursive: true });
    writeSafetensors(latents, new Map([['samples', r.samples], ['x_T', r.start]]));
    written.push(latents);
  }
  log(`${r.cancelled ? 'cancelled; ' : ''}${r.images.length} sample(s) in ${secs.toFixed(1)} s → ${written.join(', ')}`);
  return 0;
}

function describeInputs(task: tasks.TaskName): string {
  return {
    unconditional: 'it takes no conditioning input',
    class: 'use --class',
    text: 'use --prompt',
    inpainting: 'use --image and --mask',
    superres: 'use --lr-image',
    semantic: 'use --segmentation',
  }[task];
}
