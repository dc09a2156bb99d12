// `ldm sample [model]`: load a LatentDiffusion (an embedded model by name, a model folder, or an official
// config.yaml + .ckpt/.safetensors), run the task its conditioning calls for through the library's
// sample(), and write one PNG per image (its seed in the name, everything needed to make it again in the
// PNG `parameters` chunk) and a grid. Files are never replaced (numbered onward) unless --overwrite.

import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { SAMPLERS, SIGMA_SCHEDULES, type SigmaSchedule } from '../diffusion/samplers/index.js';
import type { StepCallback } from '../diffusion/samplers/index.js';
import { holdSignals, releaseSignals, trackPartial, untrackPartial } from '../io/atomic.js';
import { encodePng, ImageError, makeGrid, readImage, type Image } from '../io/image.js';
import { readSafetensors, SafetensorsError, writeSafetensors } from '../io/safetensors.js';
import { defaultModelName, embeddedModel, listModels } from '../loader/embedded.js';
import { loadModel, ModelFilesError, type LoadedModel } from '../loader/model.js';
import { planModel } from '../loader/plan.js';
import * as tasks from '../tasks/index.js';
import { formatOptions, num, one, parseArgs, UsageError, type OptionSpec, type ParsedArgs } from './args.js';
import { EXIT, EXIT_STATUS_HELP } from './errors.js';
import { cachedSha256 } from './hash.js';
import { folderProblem } from './folder-check.js';
import { OutputFolder, reserve } from './output.js';
import { packageVersion } from './version.js';

export { UsageError } from './args.js';

const D = tasks.DEFAULTS;

/** Every option of `ldm sample`, in the order --help lists them. */
export const SAMPLE_OPTIONS: OptionSpec[] = [
  { group: 'model', name: 'ckpt', value: 'PATH', help: 'weights (.ckpt / .safetensors) or a model folder (config.yaml + model.* / weights.* / *.ckpt)', default: 'the default embedded model' },
  { group: 'model', name: 'model', value: 'NAME|PATH', help: 'an embedded model (ldm models lists them) or a path, as --ckpt' },
  { group: 'model', name: 'config', short: 'c', value: 'FILE', help: "the model's config.yaml", default: 'config.yaml in the folder / beside the weights' },
  { group: 'model', name: 'ema', flag: true, help: 'sample with the EMA weights', default: 'when the config has use_ema and the file has them' },
  { group: 'model', name: 'no-ema', flag: true, help: 'sample with the live weights' },
  { group: 'model', name: 'legacy-heads', flag: true, help: "run a legacy config's SpatialTransformers with 1 head × C, as the December 2021 reference code that trained cin256 / text2img256 did", default: "the current reference code's head count" },
  { group: 'task inputs (the task follows from the model)', name: 'class', value: 'N[,N…]', repeat: true, help: 'class-conditional: class labels (repeatable)', default: 'every class of an embedded model' },
  { group: 'task inputs (the task follows from the model)', name: 'uncond-class', value: 'N', help: 'the "no class" label for guidance', default: "the model's last class" },
  { group: 'task inputs (the task follows from the model)', name: 'prompt', short: 'p', value: 'TEXT', repeat: true, help: 'text-to-image: the prompt (repeatable)' },
  { group: 'task inputs (the task follows from the model)', name: 'vocab', value: 'FILE', help: "text models: bert-base-uncased vocab.txt (one token per line)", default: 'LDM_BERT_VOCAB' },
  { group: 'task inputs (the task follows from the model)', name: 'vocab-dir', value: 'DIR', help: "SD (CLIP) text models: the folder of the tokenizer's vocab.json and merges.txt", default: 'LDM_CLIP_VOCAB' },
  { group: 'task inputs (the task follows from the model)', name: 'negative-prompt', value: 'TEXT', repeat: true, help: 'text models: the unconditional input of guidance instead of "" (one, or one per --prompt)' },
  { group: 'task inputs (the task follows from the model)', name: 'image', value: 'FILE', help: 'inpainting models: the picture to fill' },
  { group: 'task inputs (the task follows from the model)', name: 'mask', value: 'FILE', help: 'inpainting: the mask (white = fill; known pixels are kept exactly); with --init-image, any unconditional, class or text model inpaints' },
  { group: 'task inputs (the task follows from the model)', name: 'lr-image', value: 'FILE', help: 'super-resolution: the low-resolution picture (output f× larger)' },
  { group: 'task inputs (the task follows from the model)', name: 'tile', value: 'auto|on|off', help: 'super-resolution: sample in overlapping 128-pixel latent windows', default: 'auto' },
  { group: 'task inputs (the task follows from the model)', name: 'segmentation', value: 'FILE', help: 'semantic synthesis: a label map (pixel value = class, 255 = unlabelled)' },
  { group: 'task inputs (the task follows from the model)', name: 'init-image', short: 'i', value: 'FILE', help: 'img2img (unconditional, class and text models): start from this picture' },
  { group: 'task inputs (the task follows from the model)', name: 'strength', value: 'S', help: 'img2img: the fraction of the schedule re-run, 0 < S ≤ 1', default: `${D.strength}; 1 with --mask` },
  { group: 'sampling', name: 'n', short: 'n', value: 'N', help: 'images per prompt / class / input', default: D.n },
  { group: 'sampling', name: 'seed', short: 's', value: 'N', help: 'seed of the first image; image i uses seed + i', default: D.seed },
  { group: 'sampling', name: 'sampler', value: SAMPLERS.join('|'), help: 'the sampler', default: D.sampler },
  { group: 'sampling', name: 'schedule', value: SIGMA_SCHEDULES.join('|'), help: 'k-diffusion samplers: noise levels of the model\'s timesteps, Karras et al. (ρ = 7), or log-uniform', default: 'default' },
  { group: 'sampling', name: 'steps', value: 'N', help: 'sampler steps (ddpm runs every timestep)', default: `${D.steps}, or the embedded model's` },
  { group: 'sampling', name: 'scale', value: 'S', help: 'classifier-free guidance scale', default: `${D.textScale} for text, ${D.classScale} for class models with a "no class" label, else 1` },
  { group: 'sampling', name: 'eta', value: 'E', help: 'DDIM eta', default: '0; 1 for unconditional and super-resolution, as the reference scripts' },
  { group: 'sampling', name: 'H', value: 'N', help: 'image height (a multiple of f × the UNet downsampling)', default: 'the training size' },
  { group: 'sampling', name: 'W', value: 'N', help: 'image width', default: 'the training size' },
  { group: 'sampling', name: 'batch-size', short: 'b', value: 'N', help: 'denoise at most N images at once (bounds memory; same images)', default: 'all' },
  { group: 'sampling', name: 'weight-cache', value: 'MB', help: "keep up to MB of packed weights from step to step: the same images, faster steps (1.13–1.16× for 64×64-latent UNets), more memory (2.3–2.7 GB for those)", default: 'LDM_WEIGHT_CACHE_MB, else 0' },
  { group: 'sampling', name: 'x-t', value: 'FILE[:name]', help: 'start from this x_T (.safetensors), e.g. a fixed code from the reference' },
  { group: 'output', name: 'out', short: 'o', value: 'DIR', help: 'output folder', default: 'outputs' },
  { group: 'output', name: 'name', value: 'PREFIX', help: 'file name prefix (files: PREFIX-NNNN-seedS.png)', default: 'sample' },
  { group: 'output', name: 'overwrite', flag: true, help: 'number from 0000 and replace files of that name', default: 'never replace: number onward' },
  { group: 'output', name: 'no-grid', flag: true, help: 'skip the grid image' },
  { group: 'output', name: 'save-latents', value: 'FILE', help: 'also write the final latents (samples) and x_T as .safetensors' },
  { group: 'output', name: 'quiet', short: 'q', flag: true, help: 'no progress output' },
  { group: 'output', name: 'help', short: 'h', flag: true, help: 'this help' },
];

/** The flag each sampling input is given with: the only place that ties the library's names to the CLI's. */
export const INPUT_FLAGS: Record<tasks.TaskInput, string> = {
  classLabel: '--class', uncondClass: '--uncond-class', prompt: '--prompt', vocab: '--vocab', image: '--image', mask: '--mask',
  lowRes: '--lr-image', tile: '--tile', segmentation: '--segmentation', initImage: '--init-image', strength: '--strength',
  n: '--n', H: '--H', W: '--W', seed: '--seed', steps: '--steps', scale: '--scale', eta: '--eta', sampler: '--sampler',
  xT: '--x-t', batchSize: '--batch-size', negativePrompt: '--negative-prompt', schedule: '--schedule',
};

export const SAMPLE_USAGE = `usage: ldm sample [model] [task inputs] [options]
  model: an embedded model's name or a path (default: the embedded model ${defaultModelName() || '(none shipped)'});
  an official model: --config config.yaml --ckpt model.ckpt (or a folder holding both)
  examples:
    ldm sample --class 7 -n 16             sixteen sevens and a grid from the embedded MNIST model
    ldm sample cin256-v2/ --class 207 --scale 3 --steps 50
    ldm sample txt2img/ --prompt "a watercolor of a fox" --vocab vocab.txt
${formatOptions(SAMPLE_OPTIONS)}

Every input is checked against the model's config before its weights load. Images are written as each
batch finishes; Ctrl-C keeps the finished ones and leaves no partial file.
${EXIT_STATUS_HELP}`;

export function parseSampleArgs(argv: string[]): ParsedArgs {
  const p = parseArgs(argv, SAMPLE_OPTIONS, 1);
  if (p.flags.has('ema') && p.flags.has('no-ema')) throw new UsageError('give either --ema or --no-ema');
  return p;
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

function readXT(spec: string): { tensor: T.Tensor; file: string; name: string } {
  const i = spec.lastIndexOf(':');
  const hasName = i > 1 && !spec.slice(i + 1).includes('/');
  const file = hasName ? spec.slice(0, i) : spec;
  if (!existsSync(file)) throw new UsageError(`--x-t: ${file} does not exist`);
  let ts: Map<string, T.Tensor>;
  try {
    ts = readSafetensors(file).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new UsageError(`--x-t: ${e.message}`);
    throw e;
  }
  const name = hasName ? spec.slice(i + 1) : ts.has('x_T') ? 'x_T' : ts.size === 1 ? [...ts.keys()][0] : undefined;
  if (!name || !ts.has(name)) throw new UsageError(`--x-t: ${file} has no tensor ${name ?? '(name it: FILE:name)'}; it has ${[...ts.keys()].join(', ')}`);
  return { tensor: T.cast(ts.get(name)!, 'float32'), file, name };
}

/** An input picture and what the parameters chunk records of it. */
interface InputFile {
  image: Image;
  path: string;
  sha256: string;
}

function imageArg(p: ParsedArgs, key: string): InputFile | undefined {
  const f = one(p, key);
  if (f === undefined) return undefined;
  if (!existsSync(f)) throw new UsageError(`--${key}: ${f} does not exist`);
  try {
    return { image: readImage(f), path: path.resolve(f), sha256: cachedSha256(f) };
  } catch (e) {
    if (e instanceof ImageError) throw new UsageError(`--${key}: ${e.message}`);
    throw e;
  }
}

export async function sampleCommand(argv: string[]): Promise<number> {
  let p: ParsedArgs;
  try {
    p = parseSampleArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ldm sample: ${e.message}\n(ldm sample --help lists every option)`);
      return 2;
    }
    throw e;
  }
  if (p.flags.has('help')) {
    console.log(SAMPLE_USAGE);
    return 0;
  }
  try {
    return await runSample(p);
  } catch (e) {
    const msg = errorMessage(e);
    if (msg === undefined) throw e;
    console.error(`ldm sample: ${msg}`);
    return EXIT.usage;
  }
}

/**
 * Let a signal that arrived during the writes act (two event-loop turns: the signal is read in the poll
 * phase), then give SIGINT/SIGTERM their default action again, so that Ctrl-C during the synchronous
 * sampling that follows ends the process at once instead of waiting for it.
 */
async function settleSignals(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
  releaseSignals();
}

/** The user-facing text of an error about the arguments (undefined: not one). */
function errorMessage(e: unknown): string | undefined {
  if (e instanceof UsageError) return e.message;
  if (e instanceof ModelFilesError) return `${e.input === 'model' ? 'model' : `--${e.input}`}: ${e.message}`;
  if (e instanceof tasks.TaskInputError) return `${INPUT_FLAGS[e.input]}: ${e.message}`;
  if (e instanceof tasks.TaskError) return e.message;
  return undefined;
}

/** Inputs a task can do without (its required ones are what the hint names). */
const OPTIONAL_INPUTS = new Set<tasks.TaskInput>(['uncondClass', 'vocab', 'tile', 'negativePrompt']);

/** "use --class", "use --image and --mask", … for a task. */
function flagsOf(task: tasks.TaskName): string {
  const ins = tasks.TASK_INPUTS[task].filter((i) => !OPTIONAL_INPUTS.has(i)).map((i) => INPUT_FLAGS[i]);
  return ins.length ? `use ${ins.join(' and ')}` : 'it takes no conditioning input';
}

/** The model argument: positional, --model or --ckpt (one of them), else the default embedded model. */
function modelArg(p: ParsedArgs): string | undefined {
  const given = ([[p.positional[0], 'model'], [one(p, 'model'), '--model'], [one(p, 'ckpt'), '--ckpt']] as const).filter(([v]) => v !== undefined);
  if (given.length > 1) throw new UsageError(`give the model once (got ${given.map(([v]) => v).join(', ')})`);
  if (!given.length) return undefined;
  const [v, how] = given[0];
  if (!existsSync(v!) && !embeddedModel(v!)) {
    const names = listModels().map((m) => m.name);
    throw new UsageError(`${how}: ${v} does not exist${how !== '--ckpt' && names.length ? ` and is not an embedded model (${names.join(', ')})` : ''}`);
  }
  return v;
}

function classList(p: ParsedArgs): number[] {
  return (p.values.get('class') ?? []).flatMap((s) => s.split(',')).map((s) => {
    const v = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(v)) throw new UsageError(`--class expects integer labels, got "${s}"`);
    return v;
  });
}

async function runSample(p: ParsedArgs): Promise<number> {
  const quiet = p.flags.has('quiet');
  const log = (s: string) => {
    if (!quiet) process.stderr.write(`${s}\n`);
  };
  // Everything is checked before the weights load: the options, the output, the inputs, then the inputs
  // against the model's config (a shape-only build) and the checkpoint's keys and shapes.
  const sampler = one(p, 'sampler');
  if (sampler !== undefined && !(SAMPLERS as readonly string[]).includes(sampler)) throw new UsageError(`--sampler must be one of ${SAMPLERS.join(', ')}, got "${sampler}"`);
  const steps = num(p, 'steps', 'int');
  if (sampler === 'ddpm' && steps !== undefined) {
    throw new UsageError('--steps does not apply to the ddpm sampler (ancestral sampling runs every timestep); for fewer steps use --sampler ddim --eta 1');
  }
  const source = modelArg(p);
  const config = one(p, 'config');
  if (config !== undefined && !existsSync(config)) throw new UsageError(`--config: ${config} does not exist`);
  const vocab = one(p, 'vocab');
  if (vocab !== undefined && !existsSync(vocab)) throw new UsageError(`--vocab: vocab file ${vocab} does not exist`);
  const vocabDir = one(p, 'vocab-dir');
  if (vocabDir !== undefined && !existsSync(vocabDir)) throw new UsageError(`--vocab-dir: folder ${vocabDir} does not exist`);
  if (vocab !== undefined && vocabDir !== undefined) throw new UsageError('give --vocab (BERT models) or --vocab-dir (CLIP models), not both');
  const schedule = one(p, 'schedule');
  if (schedule !== undefined && !(SIGMA_SCHEDULES as readonly string[]).includes(schedule)) throw new UsageError(`--schedule must be one of ${SIGMA_SCHEDULES.join(', ')}, got "${schedule}"`);
  const tile = one(p, 'tile');
  if (tile !== undefined && !['auto', 'on', 'off'].includes(tile)) throw new UsageError(`--tile must be auto, on or off, got "${tile}"`);
  const cacheMb = num(p, 'weight-cache');
  if (cacheMb !== undefined && !(cacheMb >= 0)) throw new UsageError(`--weight-cache takes megabytes ≥ 0, got ${cacheMb}`);
  const classes = classList(p);
  const numbers = {
    uncondClass: num(p, 'uncond-class', 'int'), n: num(p, 'n', 'int'), seed: num(p, 'seed', 'int'), scale: num(p, 'scale'), eta: num(p, 'eta'),
    H: num(p, 'H', 'int'), W: num(p, 'W', 'int'), strength: num(p, 'strength'), batchSize: num(p, 'batch-size', 'int'),
  };
  const out = new OutputPlan(p);
  const xT = one(p, 'x-t') !== undefined ? readXT(one(p, 'x-t')!) : undefined;
  const init = imageArg(p, 'init-image'), image = imageArg(p, 'image'), mask = imageArg(p, 'mask');
  const lowRes = imageArg(p, 'lr-image'), seg = imageArg(p, 'segmentation');

  const ema = p.flags.has('ema') ? true : p.flags.has('no-ema') ? false : 'auto';
  const build = p.flags.has('legacy-heads') ? { legacyTransformerHeads: 'single' as const } : {};
  const plan = planModel(source, { config, ema, build });
  const task = tasks.modelTask(plan.model);
  // An input for another task: say which flags this model takes.
  for (const i of tasks.CONDITIONING_INPUTS) {
    if (p.values.has(INPUT_FLAGS[i].slice(2)) && !tasks.taskTakes(task, i)) {
      throw new UsageError(`${INPUT_FLAGS[i]} is for ${tasks.takersOf(i)}, but this is ${tasks.describeTask(task)} (${flagsOf(task)})`);
    }
  }
  // `ldm sample` alone on an embedded class model: one image of every class.
  const allClasses = task === 'class' && !classes.length && plan.info?.classes;
  if (task === 'class' && !classes.length && !allClasses) throw new UsageError(`this is a class-conditional model: give --class (e.g. --class 25 or --class 25,187)`);
  if (tasks.takesPrompt(task) && !p.values.has('prompt')) throw new UsageError(`this is ${tasks.describeTask(task)}: give --prompt "…" (and the tokenizer: --vocab <bert-base-uncased vocab.txt> or --vocab-dir <CLIP folder>)`);
  const opts: tasks.SampleOptions = {
    ...numbers,
    weightCacheBytes: cacheMb === undefined ? undefined : cacheMb * 2 ** 20,
    classLabel: allClasses ? Array.from({ length: allClasses }, (_, i) => i) : classes.length ? classes : undefined,
    prompt: p.values.get('prompt'),
    vocab: vocab ?? vocabDir,
    negativePrompt: p.values.get('negative-prompt'),
    schedule: schedule as SigmaSchedule | undefined,
    steps,
    sampler: sampler as tasks.SampleOptions['sampler'],
    initImage: init?.image,
    image: image?.image,
    mask: mask?.image,
    lowRes: lowRes?.image,
    tile: tile === undefined ? undefined : tile === 'auto' ? 'auto' : tile === 'on',
    segmentation: seg?.image,
    xT: xT?.tensor,
  };
  const sp = tasks.planSample(plan.model, opts, plan.info?.defaults);
  if (sp.memory.bytes > 2 ** 30) log(`memory: about ${tasks.formatBytes(sp.memory.bytes)} (${sp.batchSize} image(s) of ${sp.W}×${sp.H} at once)`);

  const loaded = loadModel(source, { config, ema, log, build });
  log(`loaded ${loaded.name ?? path.basename(loaded.files.ckpt)} (${tasks.TASK_TITLES[task]} model, ${(loaded.model.numParameters() / 1e6).toFixed(1)} M parameters${loaded.usedEma ? ', EMA weights' : ''}) in ${loaded.seconds.toFixed(1)} s`);
  const record = {
    software: `ldm-ts ${packageVersion()}`,
    model: modelRecord(loaded),
    ...(init ? { init_image: { path: init.path, sha256: init.sha256 } } : {}),
    ...(image ? { image: { path: image.path, sha256: image.sha256 } } : {}),
    ...(mask ? { mask: { path: mask.path, sha256: mask.sha256 } } : {}),
    ...(lowRes ? { lr_image: { path: lowRes.path, sha256: lowRes.sha256 } } : {}),
    ...(seg ? { segmentation: { path: seg.path, sha256: seg.sha256 } } : {}),
    ...(xT ? { x_t: { path: path.resolve(xT.file), name: xT.name, sha256: cachedSha256(xT.file) } } : {}),
  };
  const progress = quiet ? null : progressReporter(sp.sampler, (s) => process.stderr.write(s), !!process.stderr.isTTY);
  const t1 = Date.now();
  const batches: tasks.SampleBatch[] = [];
  const written: string[] = [];
  await settleSignals();
  for (const b of tasks.sampleBatches(loaded, { ...opts, onStep: progress?.onStep }, sp)) {
    batches.push(b);
    written.push(...out.writeImages(b, { ...record, ...b.params }, regenerate(p, loaded, b.perImage)));
    await settleSignals();
  }
  progress?.done();
  const secs = (Date.now() - t1) / 1000;
  const all = { images: batches.flatMap((b) => b.images), perImage: batches.flatMap((b) => b.perImage) };
  written.push(...out.writeRest(all, { ...record, ...batches[0].params }, batches));
  const cancelled = batches.at(-1)!.cancelled;
  log(`${cancelled ? 'cancelled; ' : ''}${all.images.length} image(s) in ${secs.toFixed(1)} s → ${written.length > 4 ? `${written.slice(0, 2).join(', ')}, … ${written.at(-1)}` : written.join(', ')}`);
  return EXIT.ok;
}

function modelRecord(m: LoadedModel) {
  return {
    ...(m.name ? { name: m.name } : {}),
    config: path.resolve(m.files.config),
    config_sha256: cachedSha256(m.files.config),
    ckpt: path.resolve(m.files.ckpt),
    ckpt_sha256: cachedSha256(m.files.ckpt),
    ema: m.usedEma,
  };
}

/** The `ldm sample` arguments that make image i again alone: the same model, settings and inputs, its seed, --n 1. */
function regenerate(p: ParsedArgs, m: LoadedModel, perImage: tasks.PerImage[]): (i: number) => string[] {
  const keep = ['config', 'uncond-class', 'vocab', 'vocab-dir', 'image', 'mask', 'lr-image', 'tile', 'segmentation', 'init-image', 'strength', 'sampler', 'schedule', 'steps', 'scale', 'eta', 'H', 'W'];
  const base: string[] = [m.name ?? path.resolve(m.files.ckpt)];
  for (const k of keep) for (const v of p.values.get(k) ?? []) base.push(`--${k}`, v);
  for (const f of ['ema', 'no-ema', 'legacy-heads']) if (p.flags.has(f)) base.push(`--${f}`);
  // A negative prompt goes with its prompt (one for all, or the one given for that prompt).
  const prompts = p.values.get('prompt') ?? [], negatives = p.values.get('negative-prompt') ?? [];
  const negativeOf = (prompt: string) => (negatives.length > 1 ? negatives[prompts.indexOf(prompt)] : negatives[0]);
  return (i) => {
    const im = perImage[i];
    const neg = im.prompt !== undefined ? negativeOf(im.prompt) : undefined;
    return [
      ...base, ...(im.classLabel !== undefined ? ['--class', String(im.classLabel)] : []), ...(im.prompt !== undefined ? ['--prompt', im.prompt] : []),
      ...(neg !== undefined ? ['--negative-prompt', neg] : []), '--seed', String(im.seed), '--n', '1',
    ];
  };
}

/** Where the images, the grid and the latents go: checked before anything runs, written batch by batch. */
class OutputPlan {
  private folderCache?: OutputFolder;
  private readonly dir: string;
  private readonly name: string;
  private readonly grid: boolean;
  private readonly latents?: string;
  private readonly overwrite: boolean;

  constructor(p: ParsedArgs) {
    this.overwrite = p.flags.has('overwrite');
    const dir = one(p, 'out') ?? 'outputs';
    const problem = folderProblem(dir);
    if (problem) throw new UsageError(`--out: ${problem}`);
    const name = one(p, 'name') ?? 'sample';
    if (name === '' || /[/\\\0]/.test(name)) throw new UsageError(`--name: a file name prefix without / or \\, got "${name}"`);
    this.dir = dir;
    this.name = name;
    this.grid = !p.flags.has('no-grid');
    this.latents = one(p, 'save-latents');
    if (this.latents) {
      if (!this.overwrite && existsSync(this.latents)) throw new UsageError(`--save-latents: ${this.latents} exists (give another name, or --overwrite)`);
      const where = folderProblem(path.dirname(path.resolve(this.latents)));
      if (where) throw new UsageError(`--save-latents: ${where}`);
    }
  }

  /** The folder, created with the first file (a run refused earlier leaves nothing behind). */
  private get folder(): OutputFolder {
    this.folderCache ??= new OutputFolder(this.dir, this.name, this.overwrite);
    return this.folderCache;
  }

  /** One batch's images, numbered in the folder; `again(i)` is the command for the batch's image i. */
  writeImages(b: tasks.SampleBatch, record: Record<string, unknown>, again: (i: number) => string[]): string[] {
    holdSignals();
    return b.images.map((im, i) => {
      const params = { ...record, ...b.perImage[i], index: b.first + i, command: shellJoin(['ldm', 'sample', ...again(i)]) };
      const bytes = encodePng(im, { parameters: JSON.stringify(params), Software: String(record.software) });
      return this.folder.write(() => `-seed${b.perImage[i].seed}.png`, bytes);
    });
  }

  /** The grid of all images and the latents, after the last batch. */
  writeRest(r: { images: Image[]; perImage: tasks.PerImage[] }, record: Record<string, unknown>, batches: tasks.SampleBatch[]): string[] {
    const written: string[] = [];
    holdSignals();
    if (this.grid && r.images.length > 1) {
      const groups = new Set(r.perImage.map((x) => `${x.classLabel ?? ''}\u0000${x.prompt ?? ''}`)).size;
      const perGroup = r.images.length / groups;
      const nrow = groups > 1 && perGroup > 1 ? perGroup : groups > 1 && r.images.length <= 16 ? r.images.length : Math.ceil(Math.sqrt(r.images.length));
      const params = { ...record, images: r.perImage };
      written.push(this.folder.write(() => '-grid.png', encodePng(makeGrid(r.images, nrow), { parameters: JSON.stringify(params), Software: String(record.software) })));
    }
    if (this.latents) {
      const cat = (ts: T.Tensor[]) => (ts.length === 1 ? ts[0] : T.concat(ts, 0));
      mkdirSync(path.dirname(path.resolve(this.latents)), { recursive: true });
      if (!this.overwrite) {
        trackPartial(this.latents); // the placeholder goes if a signal comes before the bytes
        if (!reserve(this.latents)) {
          untrackPartial(this.latents);
          throw new UsageError(`--save-latents: ${this.latents} exists`);
        }
      }
      try {
        writeSafetensors(this.latents, new Map([['samples', cat(batches.map((b) => b.samples))], ['x_T', cat(batches.map((b) => b.start))]]));
      } catch (e) {
        if (!this.overwrite) try { unlinkSync(this.latents); } catch { /* gone */ }
        throw e;
      } finally {
        untrackPartial(this.latents);
      }
      written.push(this.latents);
    }
    return written;
  }
}

function shellJoin(args: string[]): string {
  return args.map((a) => (/^[\w./:=,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
