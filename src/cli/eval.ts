// `ldm eval`: the metrics of src/metrics on the command line.
//   --autoencoder <run | model folder | weights>  → PSNR, SSIM (LPIPS with its weights) on held-out images
//   --samples <PNG folder | LDM model> --real <mnist | folder>  → FID, precision, recall, class accuracy
// Prints one line per metric and the whole report as JSON (to --json FILE, else to stdout).

import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { imageToTensor, writePng } from '../io/image.js';
import { loadModel } from '../loader/model.js';
import * as M from '../metrics/index.js';
import { sample } from '../tasks/generate.js';
import { modelTask } from '../tasks/common.js';
import { formatOptions, num, one, parseArgs, UsageError, type OptionSpec } from './args.js';
import { writeFileAtomic } from '../io/atomic.js';

const OPTIONS: OptionSpec[] = [
  { name: 'autoencoder', value: 'PATH', group: 'autoencoder', help: 'a training run folder, a checkpoint/model folder (config.yaml + weights) or a weights file' },
  { name: 'config', value: 'FILE', group: 'autoencoder', help: 'the config, when it is not in the folder / beside the weights' },
  { name: 'data', value: 'mnist|DIR', group: 'autoencoder', default: 'mnist', help: 'images to reconstruct: the MNIST held-out digits, or every image of a folder' },
  { name: 'lpips', value: 'FILE', group: 'autoencoder', help: 'LPIPS weights in one file (an LPIPS state dict, or a checkpoint holding loss.perceptual_loss.*)' },
  { name: 'lpips-vgg', value: 'FILE', group: 'autoencoder', help: "torchvision's VGG16 weights (with --lpips-lin)" },
  { name: 'lpips-lin', value: 'FILE', group: 'autoencoder', help: "the LPIPS linear heads (PerceptualSimilarity's vgg.pth)" },
  { name: 'samples', value: 'DIR|MODEL', group: 'generator', help: 'generated images (a folder of PNGs; classes from their parameters chunk) or an LDM to sample from' },
  { name: 'real', value: 'mnist|DIR', group: 'generator', default: 'mnist', help: 'reference images: the MNIST held-out digits, or a folder' },
  { name: 'features', value: 'mnist|inception', group: 'generator', default: 'mnist', help: 'feature space of FID / precision / recall' },
  { name: 'inception-weights', value: 'FILE', group: 'generator', help: `${M.FID_WEIGHTS_FILE} (pytorch-fid's FID Inception weights), .pth or .safetensors` },
  { name: 'classifier', value: 'DIR', group: 'generator', help: 'the MNIST classifier folder (trained there and cached when absent)', default: '$LDM_CACHE_DIR or ~/.cache/ldm-ts, /mnist-classifier' },
  { name: 'k', value: 'N', group: 'generator', default: 3, help: 'neighbourhood size of precision / recall' },
  { name: 'floor', flag: true, group: 'generator', help: 'also report the metrics of as many real training digits vs the held-out ones (MNIST; alone: only that)' },
  { name: 'n-per-class', value: 'N', group: 'sampling (--samples MODEL)', default: 100, help: 'samples per class (class models) or in all (unconditional)' },
  { name: 'classes', value: 'LIST', group: 'sampling (--samples MODEL)', default: 'the classes of --real (0–9 for MNIST)', help: 'class labels to sample, e.g. 0,1,2' },
  { name: 'steps', value: 'N', group: 'sampling (--samples MODEL)', default: 50, help: 'DDIM steps' },
  { name: 'scale', value: 'S', group: 'sampling (--samples MODEL)', default: 3, help: 'classifier-free guidance scale' },
  { name: 'eta', value: 'E', group: 'sampling (--samples MODEL)', default: 0, help: 'DDIM eta' },
  { name: 'seed', value: 'N', group: 'sampling (--samples MODEL)', default: 0, help: 'seed of the first sample (sample i uses seed + i)' },
  { name: 'no-ema', flag: true, group: 'sampling (--samples MODEL)', help: 'sample with the live weights even when EMA weights exist' },
  { name: 'save-samples', value: 'DIR', group: 'sampling (--samples MODEL)', help: 'write the generated images there as PNGs' },
  { name: 'held-out', value: 'N', group: 'data', default: M.MNIST_HELD_OUT, help: 'MNIST digits held out from training' },
  { name: 'split-seed', value: 'N', group: 'data', default: M.MNIST_SPLIT_SEED, help: 'seed of the MNIST train / held-out split' },
  { name: 'channels', value: '1|3', group: 'data', help: 'read image folders as gray (1) or RGB (3)', default: "the autoencoder's input channels; for samples 1 with --features mnist, else 3" },
  { name: 'batch', value: 'N', group: 'data', default: 50, help: 'images per forward pass (and per sampling batch)' },
  { name: 'limit', value: 'N', group: 'data', help: 'use only the first N images of each set (of the MNIST held-out digits: N evenly spaced ones)' },
  { name: 'json', value: 'FILE', help: 'write the report there (default: print it)' },
  { name: 'help', short: 'h', flag: true, help: 'this text' },
];

export const EVAL_USAGE = `usage: ldm eval --autoencoder <run|folder|weights> [--data mnist|DIR] [--lpips FILE]
       ldm eval --samples <DIR|model> [--real mnist|DIR] [--features mnist|inception] [--floor]
       ldm eval --floor            (MNIST training vs held-out digits: the best a generator can hope for)

Autoencoders: PSNR and SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, per
channel then averaged; on intensities in [0, 1], data range 1; reconstructions from the posterior mode, clamped),
LPIPS when its weights are given. Generators: FID (pytorch-fid's estimator, float64), improved precision
and recall (Kynkäänniemi et al. 2019, k-NN radii), and — for samples that carry their class — the MNIST
classifier's accuracy on the requested class.
${formatOptions(OPTIONS)}`;

function intOpt(p: ReturnType<typeof parseArgs>, key: string, def: number, min = 0): number {
  const v = num(p, key, 'int') ?? def;
  if (v < min) throw new UsageError(`--${key} must be ≥ ${min}, got ${v}`);
  return v;
}

export async function evalCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, OPTIONS);
  if (p.flags.has('help')) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const ae = one(p, 'autoencoder'), samples = one(p, 'samples');
  if (ae && samples) throw new UsageError(`give either --autoencoder or --samples\n${EVAL_USAGE}`);
  if (!ae && !samples && !p.flags.has('floor')) throw new UsageError(`give --autoencoder, --samples, or --floor alone\n${EVAL_USAGE}`);
  const split = { heldOut: intOpt(p, 'held-out', M.MNIST_HELD_OUT, 1), splitSeed: intOpt(p, 'split-seed', M.MNIST_SPLIT_SEED) };
  const batch = intOpt(p, 'batch', 50, 1);
  const limit = num(p, 'limit', 'int');
  const channelsOpt = num(p, 'channels', 'int');
  if (channelsOpt !== undefined && channelsOpt !== 1 && channelsOpt !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channelsOpt}`);
  const log = (s: string) => console.error(s);
  const cut = (s: M.ImageSet): M.ImageSet => (limit === undefined ? s : { ...s, images: s.images.slice(0, limit), labels: s.labels.slice(0, limit), names: s.names.slice(0, limit) });
  const imagesOf = (arg: string, what: string, channels: 1 | 3): M.ImageSet => {
    if (arg === 'mnist') {
      // The held-out digits are in digit order: a limit takes evenly spaced ones (every digit).
      const h = M.mnistSplit(split).heldOut;
      const n = Math.min(limit ?? h.length, h.length);
      return M.datasetImages(h, Int32Array.from({ length: n }, (_, i) => Math.floor((i * h.length) / n)));
    }
    if (!existsSync(arg) || !statSync(arg).isDirectory()) throw new UsageError(`--${what}: ${arg} is neither "mnist" nor a folder of images`);
    return cut(M.loadImageFolder(arg, channels));
  };

  let report: Record<string, unknown>;
  const lines: string[] = [];
  if (ae) {
    const lpipsFiles = { full: one(p, 'lpips'), vgg16: one(p, 'lpips-vgg'), lin: one(p, 'lpips-lin') };
    if (!!lpipsFiles.vgg16 !== !!lpipsFiles.lin) throw new UsageError('--lpips-vgg and --lpips-lin go together');
    const dataArg = one(p, 'data') ?? 'mnist';
    const { model, files } = M.loadAutoencoder(ae, one(p, 'config'));
    const set = imagesOf(dataArg, 'data', (channelsOpt ?? (model._ddconfig.in_channels === 1 ? 1 : 3)) as 1 | 3);
    const lpips = lpipsFiles.full || lpipsFiles.vgg16 ? M.loadLpips(lpipsFiles) : undefined;
    if (!lpips) log('note: no LPIPS weights given (--lpips, or --lpips-vgg with --lpips-lin): LPIPS is not reported');
    const t0 = Date.now();
    const r = M.evaluateReconstruction((x) => M.reconstruct(model, x), set, { batchSize: batch, lpips });
    report = { kind: 'autoencoder', autoencoder: files, data: dataArg, ...r, seconds: (Date.now() - t0) / 1000 };
    lines.push(`psnr ${fmt(r.psnr)} dB${r.psnr_identical ? ` (${r.psnr_identical} images exact; ${fmt(r.psnr_finite)} dB over the rest)` : ''}`, `ssim ${r.ssim.toFixed(4)}`);
    if (r.lpips !== undefined) lines.push(`lpips ${r.lpips.toFixed(4)}`);
    lines.push(`images ${r.n}`);
  } else {
    const realArg = one(p, 'real') ?? 'mnist';
    const features = one(p, 'features') ?? 'mnist';
    if (features !== 'mnist' && features !== 'inception') throw new UsageError(`--features must be mnist or inception, got "${features}"`);
    const weights = one(p, 'inception-weights');
    if (features === 'inception' && !weights) throw new UsageError(M.missingInceptionWeightsMessage());
    if (weights && !existsSync(weights)) throw new UsageError(`--inception-weights: ${weights} does not exist`);
    const k = intOpt(p, 'k', 3, 1);
    const real = imagesOf(realArg, 'real', (channelsOpt ?? (features === 'mnist' ? 1 : 3)) as 1 | 3);
    const classifierDir = one(p, 'classifier') ?? M.defaultClassifierDir();
    // The classifier reads 32×32 digits: it labels samples (and gives the MNIST feature space) when they are such.
    const digits = (s: M.ImageSet) => s.height === 32 && s.width === 32;
    const fake = samples ? samplesOf(samples, p, real, batch, log, cut, channelsOpt) : null;
    const needClassifier = features === 'mnist' || (!!fake && digits(fake) && fake.labels.some((l) => l !== undefined));
    const cls = needClassifier ? M.ensureMnistClassifier(classifierDir, { ...split, log }) : null;
    if (cls?.trained) log(`classifier: held-out accuracy ${(100 * cls.info.held_out_accuracy).toFixed(2)} % after ${cls.info.train_seconds.toFixed(0)} s`);
    const net: M.FeatureNet = features === 'mnist' ? new M.MnistFeatureNet(cls!.net) : new M.InceptionFeatureNet(weights!);
    for (const [what, s] of [['real', real], ['samples', fake]] as const) {
      if (features === 'mnist' && s && !digits(s)) throw new UsageError(`--features mnist needs 32×32 digit images (${what}: ${s.width}×${s.height}); use --features inception`);
    }
    const t0 = Date.now();
    report = { kind: 'generator', samples: samples ?? null, real: realArg, feature_space: net.name };
    if (fake) {
      const r = M.evaluateGeneration(real, fake, net, { k, batchSize: batch, classifier: cls && digits(fake) ? cls.net : undefined });
      Object.assign(report, r);
      lines.push(`fid ${fmt(r.fid)} (${r.feature_space}, ${r.n_fake} samples vs ${r.n_real} real)`, `precision ${r.precision.toFixed(4)}`, `recall ${r.recall.toFixed(4)} (k = ${r.k})`);
      if (r.class_accuracy !== undefined) lines.push(`class_accuracy ${(100 * r.class_accuracy).toFixed(2)} % (${r.class_accuracy_n} labelled samples)`);
    }
    if (cls) report.classifier = { dir: classifierDir, held_out_accuracy: cls.info.held_out_accuracy };
    if (p.flags.has('floor')) {
      if (realArg !== 'mnist') throw new UsageError('--floor compares MNIST training digits with the held-out ones: use it with --real mnist');
      const { train } = M.mnistSplit(split);
      // As many training digits as held-out ones, drawn with a fixed seed.
      const n = Math.min(real.images.length, train.length);
      const pick = new T.Generator(split.splitSeed + 1);
      const idx = Int32Array.from({ length: train.length }, (_, i) => i);
      for (let i = idx.length - 1; i > 0; i--) {
        const j = pick.int(i + 1);
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
      const floorSet = M.datasetImages(train, idx.subarray(0, n));
      const f = M.evaluateGeneration(real, floorSet, net, { k, batchSize: batch });
      report.floor = { fid: f.fid, precision: f.precision, recall: f.recall, n_train: f.n_fake, n_held_out: f.n_real };
      lines.push(`floor_fid ${fmt(f.fid)} (${f.n_fake} training digits vs ${f.n_real} held-out)`, `floor_precision ${f.precision.toFixed(4)}`, `floor_recall ${f.recall.toFixed(4)}`);
    }
    report.seconds = (Date.now() - t0) / 1000;
  }
  for (const l of lines) console.log(l);
  const json = JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2);
  const out = one(p, 'json');
  if (out) {
    mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    writeFileAtomic(out, new TextEncoder().encode(`${json}\n`));
    log(`report → ${out}`);
  } else console.log(json);
  return 0;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : String(v);
}

/** Is `arg` a model (weights file, model folder, run folder) rather than a folder of images? */
function isModel(arg: string): boolean {
  if (!existsSync(arg)) return true; // perhaps an embedded model's name; loadModel says otherwise
  if (!statSync(arg).isDirectory()) return /\.(ckpt|safetensors|pt|pth|bin)$/i.test(arg);
  const names = readdirSync(arg);
  return names.includes('config.yaml') || names.includes('checkpoints');
}

/** The generated images: read from a folder, or sampled from a model (class models: n per class). */
function samplesOf(arg: string, p: ReturnType<typeof parseArgs>, real: M.ImageSet, batch: number, log: (s: string) => void, cut: (s: M.ImageSet) => M.ImageSet, channels?: number): M.ImageSet {
  if (!isModel(arg)) return cut(M.loadImageFolder(arg, (channels ?? real.channels) as 1 | 3));
  const src = existsSync(path.join(arg, 'checkpoints', 'last')) ? path.join(arg, 'checkpoints', 'last') : arg;
  const loaded = loadModel(src, { ema: p.flags.has('no-ema') ? false : 'auto', log });
  const perClass = intOpt(p, 'n-per-class', 100, 1);
  const listArg = one(p, 'classes');
  const isClass = modelTask(loaded.model) === 'class';
  let classes: number[] | undefined;
  if (isClass) {
    classes = listArg !== undefined
      ? listArg.split(',').map((s) => {
        const v = Number(s);
        if (s.trim() === '' || !Number.isInteger(v) || v < 0) throw new UsageError(`--classes expects comma-separated integer labels, got "${s}"`);
        return v;
      })
      : [...new Set(real.labels.filter((l): l is number => l !== undefined))].sort((a, b) => a - b);
    if (!classes.length) throw new UsageError('the model is class-conditional and the real images carry no labels: give --classes');
  } else if (listArg !== undefined) throw new UsageError('--classes applies to class-conditional models');
  const steps = intOpt(p, 'steps', 50, 1), seed = intOpt(p, 'seed', 0), scale = num(p, 'scale') ?? 3, eta = num(p, 'eta') ?? 0;
  const total = (classes?.length ?? 1) * perClass;
  log(`sampling ${total} images (DDIM ${steps} steps, eta ${eta}${isClass ? `, guidance ${scale}` : ''}, seed ${seed}${loaded.usedEma ? ', EMA weights' : ''})`);
  const t0 = Date.now();
  let lastPct = -1;
  const r = sample(loaded, {
    classLabel: classes, n: perClass, seed, steps, eta, sampler: 'ddim', batchSize: batch, ...(isClass ? { scale } : {}),
    onStep: (s: { step: number; total: number }) => {
      const pct = Math.floor((100 * s.step) / s.total);
      if (pct % 10 === 0 && pct !== lastPct) {
        lastPct = pct;
        log(`  ${pct} % (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      }
    },
  });
  const ch = (channels ?? real.channels) as 1 | 3;
  const set: M.ImageSet = { images: [], channels: ch, height: r.images[0].height, width: r.images[0].width, labels: [], names: [] };
  const save = one(p, 'save-samples');
  if (save) mkdirSync(save, { recursive: true });
  r.images.forEach((im, i) => {
    set.images.push((T.contiguousData(imageToTensor(im, ch === 1 ? 'gray' : 'rgb')) as Float32Array).slice());
    const label = r.perImage[i]?.classLabel;
    set.labels.push(label);
    const name = `sample-${String(i).padStart(5, '0')}.png`;
    set.names.push(name);
    if (save) writePng(path.join(save, name), im, { parameters: JSON.stringify({ ...r.params, seed: r.perImage[i]?.seed ?? seed + i, ...(label !== undefined ? { class: label } : {}), index: i }), Software: 'ldm-ts' });
  });
  log(`sampled ${r.images.length} images in ${((Date.now() - t0) / 1000).toFixed(1)} s${save ? ` → ${save}` : ''}`);
  return set;
}
