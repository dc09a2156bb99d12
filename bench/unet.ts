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
import { writeSafetensors } from '../src/io/safetensors.js';
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

/**
 * Floating-point work of fn, counted from the GEMM, convolution and attention kernels it calls (backward
 * convolutions count their two products; the flash attention backward counts twice its forward, its
 * recomputation of the scores not included).
 */
function countFlops(fn: () => void): number {
  const saved = { ...K };
  let flops = 0;
  K.gemm = (g) => {
    flops += 2 * g.M * g.N * g.K * g.batch;
    saved.gemm(g);
  };
  const convFlops = (g: { N: number; O: number; C: number; kh: number; kw: number; OH: number; OW: number }) =>
    2 * g.N * g.O * g.C * g.kh * g.kw * g.OH * g.OW;
  K.conv2dForward = function (this: unknown, g, x, w, b, out) {
    flops += convFlops(g);
    saved.conv2dForward.call(this, g, x, w, b, out);
  };
  K.conv2dBackwardInput = function (this: unknown, g, gy, w, gx) {
    flops += convFlops(g);
    saved.conv2dBackwardInput.call(this, g, gy, w, gx);
  };
  K.conv2dBackwardWeight = function (this: unknown, g, x, gy, gw, gb) {
    flops += convFlops(g);
    saved.conv2dBackwardWeight.call(this, g, x, gy, gw, gb);
  };
  K.attentionForward = (q, k, v, B, Lq, Lk, D, Dv, scale, out, lse) => {
    flops += 2 * B * Lq * Lk * (D + Dv);
    saved.attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse);
  };
  K.attentionBackward = (q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv) => {
    flops += 4 * B * Lq * Lk * (D + Dv);
    saved.attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv);
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

/** Saves the files in a temporary folder, runs the twin's unet_check on it and returns its report. */
function runTwin(python: string, files: Record<string, Map<string, T.Tensor> | Record<string, T.Tensor>>, cfg: object): TwinReport {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-unet-check-'));
  try {
    for (const [name, map] of Object.entries(files)) writeSafetensors(join(dir, `${name}.safetensors`), map);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const r = spawnSync(python, [join(here, 'torch_bench.py'), 'unet_check', dir], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.status !== 0) throw new Error(`unet twin check failed: ${r.stderr.trim().split('\n').pop()}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as TwinReport;
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

function checkTrainStep(python: string): void {
  const model = unetFromParams({ image_size: 32, ...TRAIN_CONFIG });
  const gen = new T.Generator(11);
  randomize(model, gen);
  const x = T.randn([2, 4, 32, 32], gen), eps = T.randn([2, 4, 32, 32], gen), t = T.tensor([10, 700], [2]);
  // A copy of the weights before the step (the state dict holds the live parameters).
  const weights = new Map([...model.stateDict()].map(([k, v]) => [k, T.tensor(Float32Array.from(T.contiguousData(v) as Float32Array), [...v.shape])]));
  const loss = T.mseLoss(model.forward(x, t), eps);
  loss.backward();
  const grads = new Map([...model.namedParameters()].map(([k, p]) => [k, p.grad!]));
  new AdamW(model.parameters(), { lr: TRAIN_LR, weight_decay: TRAIN_WD }).step();
  const res = runTwin(python, { weights, io: { x, t, eps, loss: T.reshape(loss, [1]) }, grads, after: model.stateDict() },
    { ...TRAIN_CONFIG, train: { lr: TRAIN_LR, weight_decay: TRAIN_WD } });
  console.log(`twin check, training step (${model.numParameters()} parameters): loss ${res.loss_ours} vs torch ${res.loss_torch} ` +
    `(rel. ${res.rel_loss!.toExponential(2)}); gradients rel. L2 ${res.rel_l2_grad!.toExponential(2)}; AdamW updates rel. L2 ${res.rel_l2_update!.toExponential(2)}`);
  if (!(res.rel_loss! < 1e-5 && res.rel_l2_grad! < 1e-4 && res.rel_l2_update! < 1e-2)) {
    throw new Error(`the torch twin's training step differs: ${JSON.stringify(res)}`);
  }
}

function checkTwins(python: string): void {
  checkForward(python, 'celebahq UNet (model_channels 64)', { ...UNET_CONFIG, model_channels: 64 }, 32, false);
  checkForward(python, 'cin256-v2 UNet (model_channels 64)', { ...CIN_CONFIG, model_channels: 64 }, 32, true);
  checkTrainStep(python);
}

function forwardCase(name: string, what: string, cfg: Record<string, unknown>, context: boolean, batch = 1, contextLen = 1): BenchCase {
  const c: BenchCase = {
    name, what, flops: 0, torch: [name],
    setup: () => {
      const model = unetFromParams({ image_size: 64, ...cfg }).eval();
      const gen = new T.Generator(3);
      const x = T.keep(T.randn([batch, cfg.in_channels as number, 64, 64], gen)), t = T.keep(T.full([batch], 500));
      const ctx = context ? T.keep(T.randn([batch, contextLen, cfg.context_dim as number], gen)) : null;
      const run = () => {
        T.noGrad(() => T.tidy(() => {
          model.forward(x, t, ctx);
        }));
      };
      c.flops = countFlops(run);
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

/** The UNet cases selected by --only (all when absent); runs the twin checks first with --check-unet. */
export async function unetCases(): Promise<BenchCase[]> {
  const i = process.argv.indexOf('--only');
  const only = i >= 0 ? process.argv[i + 1].split(',') : null;
  const python = process.argv.includes('--python') ? process.argv[process.argv.indexOf('--python') + 1] : '/usr/bin/python3';
  if (process.argv.includes('--check-unet')) checkTwins(python);
  const cases = [
    forwardCase('unet_fwd', 'UNet forward, celebahq-ldm-vq-4 config (%M M params), 1×3×64×64', UNET_CONFIG, false),
    forwardCase('unet_cin_fwd', 'UNet forward, cin256-v2 config (%M M params, cross-attn), 1×3×64×64', CIN_CONFIG, true),
    forwardCase('unet_sd_fwd', 'UNet forward, SD v1 config (%M M params, cross-attn to 77×768), 2×4×64×64', SD_CONFIG, true, 2, 77),
    trainCase(),
  ];
  return cases.filter((c) => !only || only.includes(c.name));
}
