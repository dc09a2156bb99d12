// One training step of a first-stage autoencoder, as ldm/models/autoencoder.py trains AutoencoderKL and VQModel
// under PyTorch Lightning 1.x (two optimizers, each run once per batch, in order):
//
//   optimizer 0 (generator): the discriminator's parameters are frozen (Lightning's toggle_optimizer);
//     xrec = decode(posterior sample | quantized latent); loss = LPIPSWithDiscriminator / VQLPIPSWithDiscriminator
//     at optimizer_idx 0 (adaptive d_weight at decoder.conv_out.weight); backward; Adam step.
//   optimizer 1 (discriminator): the autoencoder's parameters are frozen; the whole forward runs AGAIN with the
//     weights just updated (and a fresh posterior sample), then the hinge/vanilla loss on D(x) and D(xrec) (two
//     separate BatchNorm batches); backward; Adam step — also during GAN-off steps, where the loss is 0 × hinge:
//     zero gradients, but Adam's step count and moments advance, as in the reference.
// configure_optimizers: Adam(betas (0.5, 0.9)) over encoder + decoder (+ quantize) + quant_conv + post_quant_conv
// with lr (VQ: lr_g_factor · lr), and Adam over loss.discriminator with lr. `loss.logvar` (KL) is in neither: it
// gets a gradient and never changes. The model is in training mode, which makes LPIPS's dropout active.
//
// Each pass runs in a memory scope: everything but the parameters, their optimizer state and the logged numbers
// is released when the pass ends, so a long loop stays flat.

import * as T from '../engine/index.js';
import { Adam } from '../nn/optim.js';
import type { Parameter } from '../nn/index.js';
import { AutoencoderKL, VQModel } from '../models/autoencoder/autoencoder.js';
import type { DiagonalGaussianDistribution } from '../models/autoencoder/distribution.js';
import { LPIPSWithDiscriminator, VQLPIPSWithDiscriminator, type LossStep } from '../models/losses/perceptual.js';

export type TrainableAutoencoder = AutoencoderKL | VQModel;

export interface AutoencoderOptimizers {
  /** Optimizer 0: the autoencoder (generator). */
  ae: Adam;
  /** Optimizer 1: the discriminator. */
  disc: Adam;
  lrG: number;
  lrD: number;
}

/** The loss module of a trainable autoencoder (checked: Identity / DummyLoss cannot train). */
export function autoencoderLoss(model: TrainableAutoencoder): LPIPSWithDiscriminator | VQLPIPSWithDiscriminator {
  const loss = model.loss;
  if (model instanceof AutoencoderKL) {
    if (!(loss instanceof LPIPSWithDiscriminator)) throw new Error(`AutoencoderKL training needs lossconfig ldm.modules.losses.LPIPSWithDiscriminator, the model has ${loss ? loss.constructor.name : 'no loss'}`);
    return loss;
  }
  if (!(loss instanceof VQLPIPSWithDiscriminator)) throw new Error(`VQModel training needs lossconfig taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator, the model has ${loss ? loss.constructor.name : 'no loss'}`);
  return loss;
}

/** The generator optimizer's parameters, in configure_optimizers' order. */
export function generatorParameters(model: TrainableAutoencoder): Parameter[] {
  const ps = [...model.encoder.parameters(), ...model.decoder.parameters()];
  if (model instanceof VQModel) ps.push(...model.quantize.parameters());
  ps.push(...model.quant_conv.parameters(), ...model.post_quant_conv.parameters());
  return ps;
}

export function discriminatorParameters(model: TrainableAutoencoder): Parameter[] {
  return autoencoderLoss(model).discriminator.parameters();
}

/**
 * configure_optimizers: two Adam(betas (0.5, 0.9), eps 1e-8, no weight decay). `lr` is the model's learning rate
 * (main.py: accumulate_grad_batches · n_gpus · batch · base_learning_rate); VQModel's generator uses lr_g_factor · lr.
 */
export function createAutoencoderOptimizers(model: TrainableAutoencoder, lr: number, opts: { lrGFactor?: number } = {}): AutoencoderOptimizers {
  if (!(lr > 0)) throw new RangeError(`createAutoencoderOptimizers: the learning rate must be positive, got ${lr}`);
  const factor = opts.lrGFactor ?? 1;
  if (model instanceof AutoencoderKL && factor !== 1) throw new Error(`createAutoencoderOptimizers: lr_g_factor (${factor}) is a VQModel setting; AutoencoderKL uses one lr for both optimizers`);
  if (!(factor > 0)) throw new RangeError(`createAutoencoderOptimizers: lr_g_factor must be positive, got ${factor}`);
  const lrG = factor * lr, lrD = lr;
  return {
    ae: new Adam(generatorParameters(model), { lr: lrG, betas: [0.5, 0.9] }),
    disc: new Adam(discriminatorParameters(model), { lr: lrD, betas: [0.5, 0.9] }),
    lrG,
    lrD,
  };
}

export type AePass = 'generator' | 'discriminator';

/** What a pass computed, handed to an observer (valid only during the call: the pass's scope owns it). */
export interface AePassInfo {
  pass: AePass;
  /** The pass's loss (its gradients are in the parameters' .grad at 'backward'). */
  loss: T.Tensor;
  log: Record<string, number>;
  reconstructions: T.Tensor;
  /** LPIPS per sample [B, 1, 1, 1] (generator pass with a perceptual weight). */
  pLoss: T.Tensor | null;
  /** VQModel: the codebook loss and indices of this pass's forward. */
  codebookLoss: T.Tensor | null;
  indices: T.Tensor | null;
}

export interface AutoencoderStepOptions {
  optimizers: AutoencoderOptimizers;
  /** Random stream for the posterior samples and LPIPS dropout (default: the engine's generator). */
  gen?: T.Generator;
  /** Replayed posterior noise of each pass (KL), instead of drawing it from gen. */
  noise?: { generator?: T.Tensor; discriminator?: T.Tensor };
  /** Replayed LPIPS keep masks (lin0..lin4) of the generator pass. */
  lpipsKeep?: T.Tensor[];
  /** Runs each pass's backward (default: loss.backward()); data-parallel training averages the gradients here. */
  backward?: (pass: AePass, run: () => void) => void;
  /** Called after each pass's backward (gradients in .grad) and after its optimizer step. */
  observe?: (phase: 'backward' | 'step', info: AePassInfo) => void;
}

export interface AutoencoderStepResult {
  /** The loss modules' log dicts of both passes (train/… keys), plus aeloss / discloss. */
  logs: Record<string, number>;
}

interface Forward {
  xrec: T.Tensor;
  posterior: DiagonalGaussianDistribution | null;
  codebookLoss: T.Tensor | null;
  indices: T.Tensor | null;
}

function forward(model: TrainableAutoencoder, x: T.Tensor, noise: T.Tensor | T.Generator): Forward {
  if (model instanceof AutoencoderKL) {
    const { dec, posterior } = model.forward(x, true, noise);
    return { xrec: dec, posterior, codebookLoss: null, indices: null };
  }
  const { dec, diff, indices } = model.forward(x);
  return { xrec: dec, posterior: null, codebookLoss: diff, indices };
}

/** Run fn with every parameter outside `active` frozen (toggle_optimizer), then put the flags back. */
function toggled<R>(active: Adam, all: Adam[], fn: () => R): R {
  const own = new Set<T.Tensor>(active.params());
  const saved: [T.Tensor, boolean][] = [];
  for (const o of all) for (const p of o.params()) if (!own.has(p)) {
    saved.push([p, p.requiresGrad]);
    p.requiresGrad = false;
  }
  try {
    return fn();
  } finally {
    for (const [p, f] of saved) p.requiresGrad = f;
  }
}

function checkInput(model: TrainableAutoencoder, x: T.Tensor): void {
  const c = model._ddconfig.in_channels, f = 2 ** (model._ddconfig.ch_mult.length - 1);
  if (x.ndim !== 4 || x.shape[1] !== c || x.shape[2] % f !== 0 || x.shape[3] % f !== 0) {
    throw new RangeError(`autoencoder training step: expected a batch [B, ${c}, H, W] with H and W multiples of ${f}, got [${x.shape}]`);
  }
  if (x.dtype !== 'float32') throw new TypeError(`autoencoder training step: expected a float32 batch, got ${x.dtype}`);
}

/**
 * One training step (both optimizers) on the batch x [B, C, H, W] in [-1, 1] at `globalStep` (which decides,
 * with disc_start, whether the GAN terms are on). Returns the logged values.
 */
export function autoencoderTrainStep(model: TrainableAutoencoder, x: T.Tensor, globalStep: number, opts: AutoencoderStepOptions): AutoencoderStepResult {
  checkInput(model, x);
  if (!Number.isInteger(globalStep) || globalStep < 0) throw new RangeError(`autoencoder training step: global step must be a non-negative integer, got ${globalStep}`);
  const lossModule = autoencoderLoss(model);
  const { ae, disc } = opts.optimizers;
  const gen = opts.gen ?? T.defaultGenerator;
  model.train();
  const lastLayer = model.getLastLayer();
  const isKL = model instanceof AutoencoderKL;
  const logvar = lossModule instanceof LPIPSWithDiscriminator ? lossModule.logvar : null;

  const runLoss = (f: Forward, idx: 0 | 1): LossStep =>
    isKL
      ? (lossModule as LPIPSWithDiscriminator).forward(x, f.xrec, f.posterior!, idx, globalStep, { lastLayer, lpips: { gen, keepMasks: idx === 0 ? opts.lpipsKeep : undefined } })
      : (lossModule as VQLPIPSWithDiscriminator).forward(f.codebookLoss, x, f.xrec, idx, globalStep, { lastLayer, lpips: { gen, keepMasks: idx === 0 ? opts.lpipsKeep : undefined } });

  const pass = (which: AePass, opt: Adam): Record<string, number> => {
    const idx = which === 'generator' ? 0 : 1;
    opt.zeroGrad();
    const log = toggled(opt, [ae, disc], () =>
      T.tidy(() => {
        const noise = (which === 'generator' ? opts.noise?.generator : opts.noise?.discriminator) ?? gen;
        // The discriminator pass needs no graph through the (frozen) autoencoder.
        const f = idx === 0 ? forward(model, x, noise) : T.noGrad(() => forward(model, x, noise));
        const r = runLoss(f, idx);
        const run = () => r.loss.backward();
        if (opts.backward) opts.backward(which, run);
        else run();
        const info: AePassInfo = { pass: which, loss: r.loss, log: r.log, reconstructions: f.xrec, pLoss: r.pLoss ?? null, codebookLoss: f.codebookLoss, indices: f.indices };
        opts.observe?.('backward', info);
        opt.step();
        opts.observe?.('step', info);
        return { ...r.log, [idx === 0 ? 'aeloss' : 'discloss']: r.loss.item() };
      }),
    );
    opt.zeroGrad();
    // loss.logvar is in neither optimizer: its gradient is not used; drop it so it does not pile up.
    if (logvar) {
      logvar.grad?.dispose();
      logvar.grad = null;
    }
    return log as Record<string, number>;
  };

  const genLog = pass('generator', ae);
  const discLog = pass('discriminator', disc);
  return { logs: { ...genLog, ...discLog } };
}
