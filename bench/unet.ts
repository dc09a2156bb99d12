// UNet bench cases, each against its PyTorch twin in bench/torch_bench.py (same structure, same parameter names):
//
//   unet_fwd      the denoising UNet of celebahq-ldm-vq-4 / ffhq-ldm-vq-4 (274 M parameters), forward,
//                 64×64×3 latents, batch 1 (one sampling step)
//   unet_cin_fwd  the UNet of cin256-v2 (401 M parameters; SpatialTransformers with one head, cross-attention
//                 to the class embedding, context [1, 1, 512]), forward, 64×64×3 latents, batch 1
//   unet_sd_fwd   the UNet of Stable Diffusion v1 (configs/stable-diffusion/v1-inference.yaml, 860 M parameters;
//                 SpatialTransformers with 8 heads, cross-attention to a CLIP context [2, 77, 768]), forward,
//                 64×64×4 latents (a 512×512 image), batch 2 (one guided sampling step)
//   unet_train    one training step of a 64-channel latent UNet (channel_mult [1, 2, 4], attention at 16×16 and
//                 8×8 and in the middle, 16 M parameters): forward, MSE on ε, backward, AdamW; 32×32×4 latents, batch 2
//   mnist_ldm_train  one training step of the MNIST LDM (configs/mnist/ldm-cond-kl-f4.yaml: model_channels 32,
//                 channel_mult [1, 2], SpatialTransformers at 4×4 with cross-attention to a trainable ClassEmbedder):
//                 q_sample, forward, MSE on ε, backward, AdamW; 8×8×3 latents, batch 128
//
// `npm run bench -- --check-unet` first checks that the twins compute the same functions: small models of the
// same structures (every weight random, including the zero-initialised ones) are saved with their inputs and our
// outputs, the twin loads them and reports the relative L2 errors; for the training step it also runs the same
// AdamW step and compares the loss, all gradients and all parameter updates.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/engine/index.js';
import { K } from '../src/engine/kernels/index.js';
import { readYaml } from '../src/io/config.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { ClassEmbedder } from '../src/models/encoders/index.js';
import { unetFromParams, type UNetModel } from '../src/models/unet/index.js';
import { AdamW } from '../src/nn/index.js';
import type { BenchCase } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));

// The same numbers are in torch_bench.py (UNET_CONFIG, CIN_CONFIG, TRAIN_CONFIG, TRAIN_LR, TRAIN_WD).
export const UNET_CONFIG = {
  in_channels: 3, out_channels: 3, model_channels: 224, attention_resolutions: [8, 4, 2], num_res_blocks: 2,
  channel_mult: [1, 2, 3, 4], num_head_channels: 32,
};
export const CIN_CONFIG = {
  in_channels: 3, out_channels: 3, model_channels: 192, attention_resolutions: [8, 4, 2], num_res_blocks: 2,
  channel_mult: [1, 2, 3, 5], num_heads: 1, use_spatial_transformer: true, transformer_depth: 1, context_dim: 512,
};
export const SD_CONFIG = {
  in_channels: 4, out_channels: 4, model_channels: 320, attention_resolutions: [4, 2, 1], num_res_blocks: 2,
  channel_mult: [1, 2, 4, 4], num_heads: 8, use_spatial_transformer: true, transformer_depth: 1, context_dim: 768, legacy: false,
};
export const TRAIN_CONFIG = {
  in_channels: 4, out_channels: 4, model_channels: 64, attention_resolutions: [4, 2], num_res_blocks: 2,
  channel_mult: [1, 2, 4], num_head_channels: 32,
};
const TRAIN_LR = 1e-4, TRAIN_WD = 1e-2;
// The UNet of configs/mnist/ldm-cond-kl-f4.yaml (read from the file by mnistLdm(), which checks it against these numbers).
export const MNIST_LDM_CONFIG = {
  in_channels: 3, out_channels: 3, model_channels: 32, attention_resolutions: [2], num_res_blocks: 2, channel_mult: [1, 2],
  num_head_channels: 32, use_spatial_transformer: true, transformer_depth: 1, context_dim: 64,
};
const MNIST_LDM_WD = 1e-2; // configure_optimizers' AdamW: torch's default weight decay
const MNIST_LDM_FILE = join(here, '..', 'configs', 'mnist', 'ldm-cond-kl-f4.yaml');

interface MnistLdm {
  unet: Record<string, unknown>; size: number; batch: number; lr: number; nClasses: number; embedDim: number;
  linearStart: number; linearEnd: number; timesteps: number;
}

/**
 * The training-step sizes of configs/mnist/ldm-cond-kl-f4.yaml: its UNet, batch, learning rate (base × batch, as the
 * reference main.py scales it), ClassEmbedder and noise schedule. The torch twin has the same numbers written out
 * (torch_bench.py MNIST_LDM_CONFIG, MNIST_LDM): a config that no longer matches them is an error, not a silent change.
 */
function mnistLdm(): MnistLdm {
  const doc = readYaml(MNIST_LDM_FILE) as { model: { base_learning_rate: number; params: Record<string, any> }; data: { params: { batch_size: number } } };
  const mp = doc.model.params;
  const unet = { ...(mp.unet_config.params as Record<string, unknown>) };
  const size = unet.image_size as number;
  delete unet.image_size;
  const batch = doc.data.params.batch_size;
  const m: MnistLdm = {
    unet, size, batch, lr: doc.model.base_learning_rate * batch, nClasses: mp.cond_stage_config.params.n_classes,
    embedDim: mp.cond_stage_config.params.embed_dim, linearStart: mp.linear_start, linearEnd: mp.linear_end, timesteps: mp.timesteps,
  };
  const twin = { unet: MNIST_LDM_CONFIG, size: 8, batch: 128, lr: 5.12e-4, nClasses: 11, embedDim: 64, linearStart: 0.0015, linearEnd: 0.0195, timesteps: 1000 };
  const norm = (v: object) => JSON.stringify(v, (_k, x) => (typeof x === 'number' ? Number(x.toPrecision(12)) : x));
  const sorted = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  if (norm({ ...m, unet: sorted(m.unet) }) !== norm({ ...twin, unet: sorted(twin.unet) })) {
    throw new Error(`${MNIST_LDM_FILE} no longer matches the mnist_ldm_train twin (bench/unet.ts MNIST_LDM_CONFIG and torch_bench.py): ` +
      `${norm({ ...m, unet: sorted(m.unet) })} vs ${norm({ ...twin, unet: sorted(twin.unet) })}`);
  }
  return m;
}

/** √ᾱ_t and √(1 − ᾱ_t) of the reference's "linear" schedule (ddpm.py register_schedule: betas = linspace(√start, √end, T)², in float64). */
function linearSchedule(start: number, end: number, steps: number): { sa: Float64Array; s1a: Float64Array } {
  const sa = new Float64Array(steps), s1a = new Float64Array(steps);
  let ac = 1;
  for (let i = 0; i < steps; i++) {
    const r = Math.sqrt(start) + ((Math.sqrt(end) - Math.sqrt(start)) * i) / (steps - 1);
    ac *= 1 - r * r;
    sa[i] = Math.sqrt(ac);
    s1a[i] = Math.sqrt(1 - ac);
  }
  return { sa, s1a };
}

/**
 * Floating-point work of fn, counted from the GEMM, convolution and attention kernels it calls (backward
 * convolutions count their two products; the flash attention backward counts twice its forward, its
 * recomputation of the scores not included).
 */
export function countFlops(fn: () => void): number {
  const saved = { ...K };
  let flops = 0;
  K.gemm = (g) => {
    flops += 2 * g.M * g.N * g.K * g.batch;
    saved.gemm(g);
  };
  const convFlops = (g: { N: number; O: number; C: number; kh: number; kw: number; OH: number; OW: number }) =>
    2 * g.N * g.O * g.C * g.kh * g.kw * g.OH * g.OW;
  K.conv2dForward = function (this: unknown, g, x, w, b, out, packed) {
    flops += convFlops(g);
    saved.conv2dForward.call(this, g, x, w, b, out, packed);
  };
  K.conv2dBackwardInput = function (this: unknown, g, gy, w, gx) {
    flops += convFlops(g);
    saved.conv2dBackwardInput.call(this, g, gy, w, gx);
  };
  K.conv2dBackwardWeight = function (this: unknown, g, x, gy, gw, gb) {
    flops += convFlops(g);
    saved.conv2dBackwardWeight.call(this, g, x, gy, gw, gb);
  };
  K.attentionForward = (q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H) => {
    flops += 2 * B * Lq * Lk * (D + Dv);
    saved.attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H);
  };
  K.attentionBackward = (q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H) => {
    flops += 4 * B * Lq * Lk * (D + Dv);
    saved.attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H);
  };
  try {
    fn();
  } finally {
    Object.assign(K, saved);
  }
  return flops;
}

/** Every parameter random (zero-initialised ones too), scaled by 1/√fan-in so activations stay O(1). */
function randomize(model: UNetModel, gen: T.Generator): void {
  for (const p of model.parameters()) {
    const r = T.randn(p.shape, gen);
    (p.data as Float32Array).set(T.mulScalar(r, 1 / Math.sqrt(Math.max(1, p.size / p.shape[0]))).data as Float32Array);
  }
}

interface TwinReport {
  missing: string[]; unexpected: string[]; rel_l2: number;
  rel_loss?: number; rel_l2_grad?: number; rel_l2_update?: number; loss_ours?: number; loss_torch?: number;
}

/**
 * Saves the files (name.safetensors) and config.json in a temporary folder, runs `torch_bench.py <command> <folder>`
 * (the twin's check: unet_check, ae_check) and returns its report, refusing one whose parameter names differ.
 */
export function runTwin<R extends { missing: string[]; unexpected: string[] } = TwinReport>(
  python: string, files: Record<string, Map<string, T.Tensor> | Record<string, T.Tensor>>, cfg: object, command = 'unet_check',
): R {
  const dir = mkdtempSync(join(tmpdir(), `ldm-${command.replace(/_/g, '-')}-`));
  try {
    for (const [name, map] of Object.entries(files)) writeSafetensors(join(dir, `${name}.safetensors`), map);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const r = spawnSync(python, [join(here, 'torch_bench.py'), command, dir], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.status !== 0) throw new Error(`twin check ${command} failed: ${r.stderr.trim().split('\n').pop()}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as R;
    if (res.missing.length || res.unexpected.length) {
      throw new Error(`the torch twin has other parameters: missing ${res.missing.slice(0, 5)}, unexpected ${res.unexpected.slice(0, 5)}`);
    }
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkForward(python: string, what: string, cfg: Record<string, unknown>, size: number, context: boolean): void {
  const model = unetFromParams({ image_size: size, ...cfg }).eval();
  const gen = new T.Generator(7);
  randomize(model, gen);
  const x = T.randn([1, cfg.in_channels as number, size, size], gen), t = T.tensor([321], [1]);
  const c = context ? T.randn([1, 1, cfg.context_dim as number], gen) : null;
  const y = T.noGrad(() => model.forward(x, t, c));
  const res = runTwin(python, { weights: model.stateDict(), io: { x, t, y, ...(c ? { context: c } : {}) } }, cfg);
  console.log(`twin check, ${what}: forward rel. L2 difference ${res.rel_l2.toExponential(2)}; same ${model.numParameters()} parameter names`);
  if (!(res.rel_l2 < 1e-4)) throw new Error(`the torch twin of ${what} is not the same network (rel. L2 ${res.rel_l2})`);
}

interface TrainCheck {
  what: string; cfg: Record<string, unknown>; lr: number; wd: number;
  /** Latents [B, C, S, S]; timesteps [B]; a cross-attention context [B, 1, context_dim] when the UNet has one. */
  batch: number; size: number; t: number[]; context: boolean;
  /**
   * Bound on the AdamW updates' rel. L2 difference. Adam's first step is lr·g/(|g| + ε): elements whose gradient is
   * near ε turn float-rounding differences of g into visible update differences, so this bound is looser than
   * the gradients' (1e-4); how loose depends on how many such elements the network has.
   */
  updateTol: number;
}

function checkTrainStep(python: string, c: TrainCheck): void {
  const model = unetFromParams({ image_size: c.size, ...c.cfg });
  const gen = new T.Generator(11);
  randomize(model, gen);
  const shape = [c.batch, c.cfg.in_channels as number, c.size, c.size];
  const x = T.randn(shape, gen), eps = T.randn(shape, gen), t = T.tensor(c.t, [c.batch]);
  const ctx = c.context ? T.randn([c.batch, 1, c.cfg.context_dim as number], gen) : null;
  // A copy of the weights before the step (the state dict holds the live parameters).
  const weights = new Map([...model.stateDict()].map(([k, v]) => [k, T.tensor(Float32Array.from(T.contiguousData(v) as Float32Array), [...v.shape])]));
  const loss = T.mseLoss(model.forward(x, t, ctx), eps);
  loss.backward();
  const grads = new Map([...model.namedParameters()].map(([k, p]) => [k, p.grad!]));
  new AdamW(model.parameters(), { lr: c.lr, weight_decay: c.wd }).step();
  const io = { x, t, eps, loss: T.reshape(loss, [1]), ...(ctx ? { context: ctx } : {}) };
  const res = runTwin(python, { weights, io, grads, after: model.stateDict() }, { ...c.cfg, train: { lr: c.lr, weight_decay: c.wd } });
  console.log(`twin check, ${c.what} training step (${model.numParameters()} parameters): loss ${res.loss_ours} vs torch ${res.loss_torch} ` +
    `(rel. ${res.rel_loss!.toExponential(2)}); gradients rel. L2 ${res.rel_l2_grad!.toExponential(2)}; AdamW updates rel. L2 ${res.rel_l2_update!.toExponential(2)}`);
  if (!(res.rel_loss! < 1e-5 && res.rel_l2_grad! < 1e-4 && res.rel_l2_update! < c.updateTol)) {
    throw new Error(`the torch twin's ${c.what} training step differs: ${JSON.stringify(res)}`);
  }
}

function checkTwins(python: string): void {
  checkForward(python, 'celebahq UNet (model_channels 64)', { ...UNET_CONFIG, model_channels: 64 }, 32, false);
  checkForward(python, 'cin256-v2 UNet (model_channels 64)', { ...CIN_CONFIG, model_channels: 64 }, 32, true);
  checkTrainStep(python, { what: 'unet_train', cfg: TRAIN_CONFIG, lr: TRAIN_LR, wd: TRAIN_WD, batch: 2, size: 32, t: [10, 700], context: false, updateTol: 1e-2 });
  const m = mnistLdm();
  // Cross-attention to a one-token context: the softmax over one key is constant, so to_k's true gradient is 0 and
  // both sides hold rounding noise there, which Adam's first step scales up to ±lr (hence the looser update bound).
  checkTrainStep(python, { what: 'mnist_ldm_train', cfg: m.unet, lr: m.lr, wd: MNIST_LDM_WD, batch: 4, size: m.size, t: [0, 10, 500, 999], context: true, updateTol: 5e-2 });
}

/**
 * One UNet forward under noGrad. `cached`: the same forward with a T.WeightCache kept across runs (Winograd's
 * transformed kernels packed once, as a sampling loop or a server would), timed against the same twins.
 */
function forwardCase(name: string, what: string, cfg: Record<string, unknown>, context: boolean, batch = 1, contextLen = 1, cached = false): BenchCase {
  const twin = cached ? name.replace(/_cached$/, '') : name;
  const cache = cached ? new T.WeightCache(16 * 2 ** 30) : null;
  const c: BenchCase = {
    name, what, flops: 0, torch: [twin], onnx: true, ortCase: twin,
    setup: () => {
      const model = unetFromParams({ image_size: 64, ...cfg }).eval();
      const gen = new T.Generator(3);
      const x = T.keep(T.randn([batch, cfg.in_channels as number, 64, 64], gen)), t = T.keep(T.full([batch], 500));
      const ctx = context ? T.keep(T.randn([batch, contextLen, cfg.context_dim as number], gen)) : null;
      const forward = () => {
        T.noGrad(() => T.tidy(() => {
          model.forward(x, t, ctx);
        }));
      };
      const run = cache ? () => cache.run(forward) : forward;
      c.flops = countFlops(forward);
      c.what = what.replace('%M', (model.numParameters() / 1e6).toFixed(0));
      return run;
    },
  };
  return c;
}

function trainCase(): BenchCase {
  const c: BenchCase = {
    name: 'unet_train', what: '', flops: 0, torch: ['unet_train'],
    setup: () => {
      const model = unetFromParams({ image_size: 32, ...TRAIN_CONFIG });
      const opt = new AdamW(model.parameters(), { lr: TRAIN_LR, weight_decay: TRAIN_WD });
      const gen = new T.Generator(5);
      const x = T.keep(T.randn([2, 4, 32, 32], gen)), eps = T.keep(T.randn([2, 4, 32, 32], gen)), t = T.keep(T.tensor([10, 700], [2]));
      const run = () => {
        opt.zeroGrad();
        T.tidy(() => {
          T.mseLoss(model.forward(x, t), eps).backward();
        });
        opt.step();
      };
      c.flops = countFlops(run);
      c.what = `UNet train step (mc 64, mult 1,2,4, attn 16², 8², ${(model.numParameters() / 1e6).toFixed(0)} M params), 2×4×32×32: fwd, MSE, bwd, AdamW`;
      return run;
    },
  };
  return c;
}

/**
 * One training step of the MNIST LDM (configs/mnist/ldm-cond-kl-f4.yaml) on cached latents, as train-ldm.ts runs it:
 * the ClassEmbedder's context, q_sample at the batch's timesteps, the UNet, MSE against ε, backward through the UNet
 * and the (trainable) embedder, AdamW over both. Timesteps, labels, latents and noise are drawn once.
 */
function mnistLdmCase(): BenchCase {
  const c: BenchCase = {
    name: 'mnist_ldm_train', what: '', flops: 0, torch: ['mnist_ldm_train'],
    setup: () => {
      const m = mnistLdm();
      const model = unetFromParams({ image_size: m.size, ...m.unet });
      const embedder = new ClassEmbedder(m.embedDim, m.nClasses, 'class_label');
      const opt = new AdamW([...model.parameters(), ...embedder.parameters()], { lr: m.lr, weight_decay: MNIST_LDM_WD });
      const gen = new T.Generator(9);
      const shape = [m.batch, m.unet.in_channels as number, m.size, m.size];
      const z = T.keep(T.randn(shape, gen)), eps = T.keep(T.randn(shape, gen));
      const tv = Array.from({ length: m.batch }, () => Math.floor(gen.uniform() * m.timesteps));
      const t = T.keep(T.tensor(tv, [m.batch], 'int64'));
      const labels = T.keep(T.tensor(Array.from({ length: m.batch }, () => Math.floor(gen.uniform() * m.nClasses)), [m.batch], 'int64'));
      const { sa, s1a } = linearSchedule(m.linearStart, m.linearEnd, m.timesteps);
      const a = T.keep(T.tensor(tv.map((i) => sa[i]), [m.batch, 1, 1, 1])), b = T.keep(T.tensor(tv.map((i) => s1a[i]), [m.batch, 1, 1, 1]));
      const run = () => {
        opt.zeroGrad();
        T.tidy(() => {
          const xNoisy = T.add(T.mul(a, z), T.mul(b, eps));
          T.mseLoss(model.forward(xNoisy, t, embedder.forward(labels)), eps).backward();
        });
        opt.step();
      };
      c.flops = countFlops(run);
      c.what = `MNIST LDM train step (configs/mnist/ldm-cond-kl-f4.yaml UNet, ${(model.numParameters() / 1e6).toFixed(1)} M params, ` +
        `cross-attn to a ClassEmbedder), ${m.batch}×3×${m.size}×${m.size}: q_sample, fwd, MSE, bwd, AdamW`;
      return run;
    },
  };
  return c;
}

/** The command line's --only case names (null: all) and --python interpreter, for the case lists. */
export function caseSelection(): { only: string[] | null; python: string } {
  const i = process.argv.indexOf('--only'), p = process.argv.indexOf('--python');
  return { only: i >= 0 ? process.argv[i + 1].split(',') : null, python: p >= 0 ? process.argv[p + 1] : '/usr/bin/python3' };
}

/** The UNet cases selected by --only (all when absent); runs the twin checks first with --check-unet. */
export async function unetCases(): Promise<BenchCase[]> {
  const { only, python } = caseSelection();
  if (process.argv.includes('--check-unet')) checkTwins(python);
  const cases = [
    forwardCase('unet_fwd', 'UNet forward, celebahq-ldm-vq-4 config (%M M params), 1×3×64×64', UNET_CONFIG, false),
    forwardCase('unet_fwd_cached', 'UNet forward as unet_fwd, weight cache kept across runs', UNET_CONFIG, false, 1, 1, true),
    forwardCase('unet_cin_fwd', 'UNet forward, cin256-v2 config (%M M params, cross-attn), 1×3×64×64', CIN_CONFIG, true),
    forwardCase('unet_cin_fwd_cached', 'UNet forward as unet_cin_fwd, weight cache kept across runs', CIN_CONFIG, true, 1, 1, true),
    forwardCase('unet_sd_fwd', 'UNet forward, SD v1 config (%M M params, cross-attn to 77×768), 2×4×64×64', SD_CONFIG, true, 2, 77),
    trainCase(),
    mnistLdmCase(),
  ];
  return cases.filter((c) => !only || only.includes(c.name));
}
