// First-stage (autoencoder) training-step bench cases, each against its PyTorch twin in bench/torch_autoencoder.py:
//
//   mnist_ae_train   one training step of configs/mnist/autoencoder-kl-f4.yaml (AutoencoderKL f = 4, ch 32 +
//                    LPIPSWithDiscriminator with perceptual_weight 0: L1 + KL + PatchGAN) at its batch 32×1×32×32
//   ae_lpips_train   the same step with the perceptual term on: configs/emoji/autoencoder-kl-f4.yaml (RGB,
//                    perceptual_weight 1.0; LPIPS = VGG16 trunk + lin heads, random weights on both sides since the
//                    real ones cannot be downloaded; lin dropout active as in training) at batch 8×3×32×32
//
// Both run src/train/autoencoder-step.ts as `ldm train-autoencoder` does — optimizer 0 (generator: posterior sample,
// loss at optimizer_idx 0 with the adaptive d_weight at decoder.conv_out.weight, backward, Adam) then optimizer 1
// (discriminator: the whole forward again, hinge loss on D(x) and D(x̂) as two BatchNorm batches, backward, Adam),
// both Adam(betas 0.5, 0.9) — at global step disc_start, so the GAN terms and the adaptive weight are live.
// The twin is ldm/models/autoencoder.py's training_step as PyTorch Lightning runs it with configure_optimizers'
// two optimizers. Torch's `ae_lpips_train_literal` column also keeps the work the reference does and throws away
// (its loss computes rec/LPIPS/nll/KL in the discriminator pass too; our step does not).
//
// `npm run bench -- --check-ae` first checks the twins compute the same step: the model's whole state dict (LPIPS
// and discriminator included), the batch, the posterior noise of both passes and the LPIPS keep masks are saved;
// the twin loads them, runs the step and compares the logged losses, both passes' gradients, both optimizers'
// updates and the BatchNorm running statistics.
//
// `npx tsx bench/autoencoder.ts --memory [STEPS]` runs STEPS (200) mnist_ae_train steps and prints the RSS as it
// goes (memory must stay flat: each pass runs in a memory scope); `--profile CASE [STEPS]` prints where a case's
// step spends its time, kernel by kernel.

import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as T from '../src/engine/index.js';
import { nativeAddon, nativeAvailable } from '../src/engine/kernels/native.js';
import { modelNode, readYaml } from '../src/io/config.js';
import { instantiate } from '../src/loader/targets.js';
import { AutoencoderKL } from '../src/models/autoencoder/index.js';
import { LPIPSWithDiscriminator } from '../src/models/losses/index.js';
import { Conv2d, init } from '../src/nn/index.js';
import { autoencoderTrainStep, createAutoencoderOptimizers, type AutoencoderOptimizers } from '../src/train/autoencoder-step.js';
import { profileKernels } from './profile.js';
import type { BenchCase } from './run.js';
import { caseSelection, countFlops, runTwin } from './unet.js';

const here = dirname(fileURLToPath(import.meta.url));
const CONFIGS = join(here, '..', 'configs');

/** The ae_lpips_train batch (torch_autoencoder.py LPIPS_BATCH): small enough for a step of seconds on 2 cores. */
export const LPIPS_BATCH = 8;

interface AeSetting {
  file: string;
  doc: Record<string, any>;
  batch: number;
  /** base_learning_rate × batch (main.py's scaling with one GPU, no accumulation). */
  lr: number;
  /** disc_start: the first step with the GAN terms on. */
  globalStep: number;
}

/** A config's training-step setting, read as torch_autoencoder.py read_config reads it (same overrides). */
function aeSetting(file: string, o: { perceptual?: number; batch?: number } = {}): AeSetting {
  const doc = readYaml(join(CONFIGS, file)) as Record<string, any>;
  const lp = doc.model.params.lossconfig.params;
  if (o.perceptual !== undefined) lp.perceptual_weight = o.perceptual;
  const batch = o.batch ?? doc.data.params.batch_size;
  return { file, doc, batch, lr: doc.model.base_learning_rate * batch, globalStep: lp.disc_start };
}

interface AeRun {
  model: AutoencoderKL;
  optimizers: AutoencoderOptimizers;
  x: T.Tensor;
  gen: T.Generator;
  s: AeSetting;
}

/**
 * torchvision's VGG initialisation (kaiming normal, fan_out, relu; zero bias), as the twin's VGG16 trunk has it:
 * activations keep O(1) magnitudes through the 13 convolutions, like the pretrained weights, instead of shrinking
 * ~2.5× per layer under the default conv init.
 */
function vggInit(loss: LPIPSWithDiscriminator, gen: T.Generator): void {
  for (const [, m] of loss.perceptual_loss.net.namedModules()) {
    if (!(m instanceof Conv2d)) continue;
    init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu', gen });
    if (m.bias) init.zeros_(m.bias);
  }
}

/** The model as `ldm train-autoencoder` builds it from the config (random weights), its optimizers and a batch. */
function buildAe(s: AeSetting, seed: number): AeRun {
  const gen = new T.Generator(seed);
  const { node, path } = modelNode(s.doc, s.file);
  const model = instantiate<AutoencoderKL>(node, path, { gen });
  if (!(model instanceof AutoencoderKL) || !(model.loss instanceof LPIPSWithDiscriminator)) {
    throw new Error(`${s.file}: expected an AutoencoderKL with LPIPSWithDiscriminator`);
  }
  vggInit(model.loss, gen);
  const cfg = model._ddconfig;
  const x = T.keep(T.rand([s.batch, cfg.in_channels, cfg.resolution, cfg.resolution], gen, -1, 1));
  return { model, optimizers: createAutoencoderOptimizers(model, s.lr), x, gen, s };
}

const numParams = (ps: T.Tensor[]) => ps.reduce((n, p) => n + p.size, 0);

function aeCase(name: string, label: string, setting: () => AeSetting, torch: string[]): BenchCase {
  const c: BenchCase = {
    name, what: '', flops: 0, torch,
    setup: () => {
      const r = buildAe(setting(), 5);
      const run = () => {
        T.tidy(() => {
          autoencoderTrainStep(r.model, r.x, r.s.globalStep, { optimizers: r.optimizers, gen: r.gen });
        });
      };
      c.flops = countFlops(run);
      const { ae, disc } = r.optimizers;
      const [B, C, H, W] = r.x.shape;
      c.what = `${label} (${r.s.file}, AE ${(numParams(ae.params()) / 1e6).toFixed(2)} M + PatchGAN ${(numParams(disc.params()) / 1e6).toFixed(2)} M params` +
        `${(r.model.loss as LPIPSWithDiscriminator).perceptualWeight > 0 ? ', LPIPS VGG16' : ''}), ${B}×${C}×${H}×${W} at step ${r.s.globalStep}: ` +
        `gen pass (adaptive d_weight) + disc pass, Adam ×2`;
      return run;
    },
  };
  return c;
}

const mnistSetting = () => aeSetting('mnist/autoencoder-kl-f4.yaml');
const lpipsSetting = () => aeSetting('emoji/autoencoder-kl-f4.yaml', { perceptual: 1.0, batch: LPIPS_BATCH });

// ---- twin check ----------------------------------------------------------------------------------------------

interface PassReport {
  params: number; elements: number; rel_l2_grad: number; rel_l2_update_all: number; rel_l2_update: number; max_abs_update_diff: number; lr: number;
  rounding_level: number; rounding_level_tensors: Record<string, number>;
}
interface TwinRun {
  logs: Record<string, { ours: number; torch: number; rel: number }>;
  generator: PassReport; discriminator: PassReport;
  bn_running_stats: { tensors: number; rel_l2: number };
  bn_batches_tracked: Record<string, [number, number]>;
}
interface AeTwinReport {
  missing: string[]; unexpected: string[]; float32: TwinRun; float64: TwinRun;
  torch_float32_vs_float64: { generator_grad: number; discriminator_grad: number };
}

/** A detached copy of t (any dtype). */
function copyOf(t: T.Tensor): T.Tensor {
  return T.keep(T.tensor(T.contiguousData(t).slice(), [...t.shape], t.dtype));
}

/** 0/1 keep masks of LPIPS's lin0..lin4 dropout (p 0.5) for a batch [B, 3, H, W]: shaped like the squared feature differences. */
function keepMasks(B: number, H: number, W: number, gen: T.Generator): T.Tensor[] {
  return [64, 128, 256, 512, 512].map((c, k) => {
    const shape = [B, c, Math.floor(H / 2 ** k), Math.floor(W / 2 ** k)];
    const u = T.contiguousData(T.rand(shape, gen)) as Float32Array;
    return T.keep(T.tensor(u.map((v) => (v >= 0.5 ? 1 : 0)), shape));
  });
}

/**
 * Bounds of the check, against the twin in float64 (the referee) and in float32 (the timed twin). Logged losses:
 * float32 rounding. Gradients: rounding too, but the step is full of kinks (LeakyReLU and BatchNorm'd patches in
 * the discriminator, the hinge, ReLU and max pooling in VGG, |x − x̂|): an activation within rounding of a kink
 * takes the other branch in one implementation, which changes the gradient by a discrete amount. Which side is hit
 * depends on the exact state (the same torch build measured 3.5e-4 and 1.6e-6 against its own float64 run on two
 * nearly identical states), so the gradient bounds allow a few such flips: 1e-3 against float64, 1e-2 between the
 * two float32 implementations. Updates are compared where |g| is clear of the rounding level (see
 * torch_autoencoder.py _compare_pass); Adam's first step is ≈ lr·sign(g), so every sign that a flip changes moves
 * one element by 2·lr, hence the looser update bounds.
 */
const TOL = {
  float64: { log: 1e-4, grad: 1e-3, update: 3e-2, bn: 1e-4 },
  float32: { log: 1e-4, grad: 1e-2, update: 1e-1, bn: 1e-4 },
};

function checkAeStep(python: string, what: string, s: AeSetting): void {
  const r = buildAe(s, 31);
  const { model, optimizers, x } = r;
  const gen = new T.Generator(41);
  const f = 2 ** (model._ddconfig.ch_mult.length - 1);
  const [B, , H, W] = x.shape;
  const zShape = [B, model._embedDim, H / f, W / f];
  const noise0 = T.keep(T.randn(zShape, gen)), noise1 = T.keep(T.randn(zShape, gen));
  const lpipsOn = (model.loss as LPIPSWithDiscriminator).perceptualWeight > 0;
  const keep = lpipsOn ? keepMasks(B, H, W, gen) : undefined;
  const weights = new Map([...model.stateDict()].map(([k, v]) => [k, copyOf(v)]));
  const names = new Map<T.Tensor, string>([...model.namedParameters()].map(([k, p]) => [p, k]));
  const grads = new Map<string, T.Tensor>();
  const { logs } = autoencoderTrainStep(model, x, s.globalStep, {
    optimizers, gen, noise: { generator: noise0, discriminator: noise1 }, lpipsKeep: keep,
    observe: (phase, info) => {
      if (phase !== 'backward') return;
      const idx = info.pass === 'generator' ? 0 : 1;
      for (const p of (idx === 0 ? optimizers.ae : optimizers.disc).params()) {
        grads.set(`g${idx}.${names.get(p)}`, p.grad ? copyOf(p.grad) : T.keep(T.zeros([...p.shape])));
      }
    },
  });
  const io: Record<string, T.Tensor> = { x, noise0, noise1 };
  keep?.forEach((m, k) => (io[`keep${k}`] = m));
  const cfg = {
    ddconfig: s.doc.model.params.ddconfig, embed_dim: s.doc.model.params.embed_dim, lossconfig: s.doc.model.params.lossconfig.params,
    lr: s.lr, global_step: s.globalStep, logs,
  };
  const res = runTwin<AeTwinReport>(python, { weights, io, grads, after: model.stateDict() }, cfg, 'ae_check');
  const e = (v: number) => v.toExponential(1);
  console.log(`twin check, ${what} (${s.file}, batch ${B}, step ${s.globalStep}, d_weight ${logs['train/d_weight'].toPrecision(6)}` +
    `${lpipsOn ? ', LPIPS on with replayed dropout masks' : ''}; same posterior noise; each pass from the same state):`);
  const bad: string[] = [];
  for (const prec of ['float64', 'float32'] as const) {
    const t = res[prec], tol = TOL[prec];
    const worst = Object.entries(t.logs).sort((a, b) => b[1].rel - a[1].rel)[0];
    const g = t.generator, d = t.discriminator;
    console.log(`  vs torch ${prec}: ${Object.keys(t.logs).length} logged values (worst ${worst[0]} rel. ${e(worst[1].rel)}); ` +
      `generator ${g.params} tensors: gradients rel. L2 ${e(g.rel_l2_grad)}, Adam updates ${e(g.rel_l2_update)} (${g.rounding_level} rounding-level elements left out); ` +
      `discriminator ${d.params} tensors: gradients ${e(d.rel_l2_grad)}, updates ${e(d.rel_l2_update)} (${d.rounding_level} left out); BatchNorm running stats ${e(t.bn_running_stats.rel_l2)}`);
    for (const [k, v] of Object.entries(t.logs)) if (!(v.rel < tol.log)) bad.push(`${prec} ${k}: ${v.ours} vs ${v.torch}`);
    for (const [n, q] of [['generator', g], ['discriminator', d]] as const) {
      if (!(q.rel_l2_grad < tol.grad)) bad.push(`${prec} ${n} gradients rel. L2 ${q.rel_l2_grad}`);
      if (!(q.rel_l2_update < tol.update)) bad.push(`${prec} ${n} updates rel. L2 ${q.rel_l2_update}`);
      if (q.rounding_level > q.elements * 1e-3) bad.push(`${prec} ${n}: ${q.rounding_level} of ${q.elements} gradient elements at rounding level`);
    }
    if (!(t.bn_running_stats.rel_l2 < tol.bn)) bad.push(`${prec} BatchNorm running stats rel. L2 ${t.bn_running_stats.rel_l2}`);
    for (const [k, [a, b]] of Object.entries(t.bn_batches_tracked)) if (a !== b) bad.push(`${prec} ${k} ${a} vs ${b}`);
    if (Object.keys(t.logs).length < 10) bad.push(`${prec}: only ${Object.keys(t.logs).length} logged values compared`);
  }
  const own = res.torch_float32_vs_float64;
  console.log(`  (torch float32 vs its own float64 run: generator gradients rel. L2 ${e(own.generator_grad)}, discriminator ${e(own.discriminator_grad)})`);
  if (bad.length) throw new Error(`the torch twin's ${what} training step differs: ${bad.join('; ')}`);
}

function checkTwins(python: string): void {
  checkAeStep(python, 'mnist_ae_train', mnistSetting());
  checkAeStep(python, 'ae_lpips_train', lpipsSetting());
}

// ---- the cases -------------------------------------------------------------------------------------------------

/** The autoencoder cases selected by --only (all when absent); runs the twin checks first with --check-ae. */
export async function autoencoderCases(): Promise<BenchCase[]> {
  const { only, python } = caseSelection();
  if (process.argv.includes('--check-ae')) checkTwins(python);
  const cases = [
    aeCase('mnist_ae_train', 'MNIST AutoencoderKL train step', mnistSetting, ['mnist_ae_train']),
    aeCase('ae_lpips_train', 'RGB AutoencoderKL train step with LPIPS', lpipsSetting, ['ae_lpips_train', 'ae_lpips_train_literal']),
  ];
  return cases.filter((c) => !only || only.includes(c.name));
}

// ---- memory ----------------------------------------------------------------------------------------------------

/** Runs `steps` mnist_ae_train steps; prints the RSS every 20 steps and at the end. */
function memoryRun(steps: number): void {
  const r = buildAe(mnistSetting(), 5);
  const mib = () => (process.memoryUsage().rss / 2 ** 20).toFixed(0);
  console.log(`mnist_ae_train memory: ${steps} steps, ${T.backendName()} backend; RSS after building ${mib()} MiB`);
  const t0 = performance.now();
  for (let k = 1; k <= steps; k++) {
    T.tidy(() => {
      autoencoderTrainStep(r.model, r.x, r.s.globalStep + k - 1, { optimizers: r.optimizers, gen: r.gen });
    });
    if (k % 20 === 0 || k === steps) console.log(`step ${k}: RSS ${mib()} MiB, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, ${((performance.now() - t0) / k).toFixed(0)} ms/step`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const k = process.argv.indexOf('--memory'), p = process.argv.indexOf('--profile');
  if (k < 0 && p < 0) {
    console.error('usage: npx tsx bench/autoencoder.ts --memory [STEPS] | --profile CASE [STEPS]  [--threads N]   (the bench cases run through `npm run bench`)');
    process.exit(2);
  }
  if (process.argv.includes('--threads') && T.backendName() === 'native' && nativeAvailable()) {
    nativeAddon().setThreads(Number(process.argv[process.argv.indexOf('--threads') + 1]));
  }
  if (k >= 0) memoryRun(Number(process.argv[k + 1] ?? 200) || 200);
  else {
    const name = process.argv[p + 1] ?? 'mnist_ae_train';
    const r = buildAe(name === 'ae_lpips_train' ? lpipsSetting() : mnistSetting(), 5);
    profileKernels(name, Number(process.argv[p + 2] ?? 5) || 5, (k) => T.tidy(() => {
      autoencoderTrainStep(r.model, r.x, r.s.globalStep + k, { optimizers: r.optimizers, gen: r.gen });
    }));
  }
}
