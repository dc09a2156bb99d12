// The pieces of LatentDiffusion's training (ldm/models/diffusion/ddpm.py) that a training loop needs:
//
//   prepareLdmTraining: model.train(), with the first stage — and the conditioning encoder unless
//     cond_stage_trainable — frozen and kept in eval mode (the reference's disabled_train)
//   ldmTrainableParameters: configure_optimizers' list: model.* (+ cond_stage_model.* when cond_stage_trainable,
//     + logvar when learn_logvar); createLdmOptimizer: AdamW(lr) with torch's defaults over it
//   ldmGetInput: z = scale_factor · (posterior sample | VQ latent) of the first stage, without gradients
//   ldmConditioning: get_learned_conditioning, with gradients only when the encoder is trained
//   scaleByStd: on_train_batch_start of the very first batch with scale_by_std: scale_factor = 1 / std(z)
//     (unbiased, float32) of that batch's latents, stored in the scale_factor buffer
//   ldmLossStep: t ~ U{0..T−1}, noise ~ N(0, I), p_losses → { loss, log } (the log dict with train/ keys)

import * as T from '../engine/index.js';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Module, Parameter } from '../nn/index.js';
import { Adam, AdamW } from '../nn/optim.js';

/** configure_optimizers' parameters, in its order. */
export function ldmTrainableParameters(m: LatentDiffusion): Parameter[] {
  const ps = [...m.model.parameters()];
  if (m.config.cond_stage_trainable) {
    if (!m.cond_stage_model) throw new Error('LatentDiffusion: cond_stage_trainable is set but the model has no conditioning encoder');
    ps.push(...m.cond_stage_model.parameters());
  }
  if (m.logvar) ps.push(m.logvar);
  return ps;
}

function freeze(mod: Module): void {
  mod.eval();
  for (const p of mod.parameters()) p.requiresGrad = false;
}

/**
 * Training mode as Lightning leaves a LatentDiffusion: everything in train() except the frozen first stage
 * (and a frozen conditioning encoder), which stay in eval mode without gradients. Returns the trainable
 * parameters (requiresGrad set on exactly those).
 */
export function prepareLdmTraining(m: LatentDiffusion): Parameter[] {
  m.train();
  const trainable = ldmTrainableParameters(m);
  const set = new Set<T.Tensor>(trainable);
  for (const p of m.parameters()) p.requiresGrad = set.has(p);
  freeze(m.first_stage_model);
  if (m.cond_stage_model && !m.config.cond_stage_trainable) freeze(m.cond_stage_model);
  return trainable;
}

export interface LdmOptimizerOptions {
  /** LatentDiffusion.configure_optimizers uses AdamW (torch defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01). */
  optimizer?: 'AdamW' | 'Adam';
  weightDecay?: number;
  betas?: [number, number];
}

export function createLdmOptimizer(m: LatentDiffusion, lr: number, opts: LdmOptimizerOptions = {}): AdamW | Adam {
  if (!(lr > 0)) throw new RangeError(`createLdmOptimizer: the learning rate must be positive, got ${lr}`);
  const params = ldmTrainableParameters(m);
  const args = { lr, betas: opts.betas, weight_decay: opts.weightDecay };
  if ((opts.optimizer ?? 'AdamW') === 'AdamW') return new AdamW(params, args);
  if (opts.optimizer !== 'Adam') throw new Error(`createLdmOptimizer: optimizer must be AdamW or Adam, got ${String(opts.optimizer)}`);
  return new Adam(params, args);
}

function checkImages(m: LatentDiffusion, x: T.Tensor, who: string): void {
  const fs = m.first_stage_model as unknown as { _ddconfig?: { in_channels: number } };
  const c = fs._ddconfig?.in_channels;
  if (x.ndim !== 4 || (c !== undefined && x.shape[1] !== c)) throw new RangeError(`${who}: expected images [B, ${c ?? 'C'}, H, W] in [-1, 1], got [${x.shape}]`);
}

/** get_input: the first stage's latent of images x [B, C, H, W], × scale_factor (no gradients). `noise` fixes the KL draw. */
export function ldmGetInput(m: LatentDiffusion, x: T.Tensor, noise?: T.Tensor | T.Generator): T.Tensor {
  checkImages(m, x, 'ldmGetInput');
  return T.noGrad(() => T.tidy(() => m.getFirstStageEncoding(m.encodeFirstStage(x), noise)));
}

/**
 * scale_by_std (on_train_batch_start of epoch 0, global step 0, batch 0, when not resumed): z = the first stage's
 * latent of x (at scale_factor 1), scale_factor = 1 / std(z) with the unbiased std, in float32; written into the
 * scale_factor buffer (saved with the checkpoint). Returns the new value. Data-parallel ranks pass their rows and
 * a `sum` over the ranks, so every rank gets the factor of the whole batch.
 */
export function scaleByStd(m: LatentDiffusion, x: T.Tensor, noise?: T.Tensor | T.Generator, sum: (values: number[]) => number[] = (v) => v): number {
  if (!m.scale_factor) throw new Error('scaleByStd: the model was not built with scale_by_std: true (it has no scale_factor buffer)');
  const sf = m.scale_factor.data as Float32Array;
  if (sf[m.scale_factor.offset] !== 1) {
    throw new Error(`scaleByStd: scale_factor is ${sf[m.scale_factor.offset]}, not 1 (the reference refuses a custom scale_factor together with scale_by_std; a resumed run keeps its stored value)`);
  }
  const z = ldmGetInput(m, x, noise);
  const v = T.contiguousData(z) as Float32Array;
  let total = 0;
  for (let i = 0; i < v.length; i++) total += v[i];
  const [all, count] = sum([total, v.length]);
  if (count < 2) throw new RangeError('scaleByStd: need at least two latent values');
  const mean = all / count;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i] - mean) * (v[i] - mean);
  z.dispose();
  const std = Math.fround(Math.sqrt(sum([ss])[0] / (count - 1)));
  if (!(std > 0) || !Number.isFinite(std)) throw new Error(`scaleByStd: the first batch's latents have std ${std}; cannot scale by it`);
  const s = Math.fround(1 / std);
  sf[m.scale_factor.offset] = s;
  return s;
}

/** Whether on_train_batch_start would rescale now (first batch of a run that did not start from a checkpoint). */
export function shouldScaleByStd(m: LatentDiffusion, at: { epoch: number; globalStep: number; batchIdx: number; restarted: boolean }): boolean {
  return m.config.scale_by_std && at.epoch === 0 && at.globalStep === 0 && at.batchIdx === 0 && !at.restarted;
}

/** get_learned_conditioning of the raw conditioning input (labels, token ids, prompts, a spatial map); null when unconditional. */
export function ldmConditioning(m: LatentDiffusion, raw: unknown): T.Tensor | null {
  if (m.config.conditioning_key === null) return null;
  if (raw === undefined || raw === null) throw new Error(`LatentDiffusion (conditioning_key ${m.config.conditioning_key}): the batch has no ${m.config.cond_stage_key}`);
  return m.config.cond_stage_trainable ? m.getLearnedConditioning(raw) : T.noGrad(() => m.getLearnedConditioning(raw));
}

export interface LdmLossOptions {
  /** Draws t and noise (default: the engine's generator). */
  gen?: T.Generator;
  /** Fixed timesteps [B] (int) and noise (replay). */
  t?: T.Tensor;
  noise?: T.Tensor;
}

/**
 * The training loss of one batch of latents z (from ldmGetInput or a latent cache) with encoded conditioning:
 * t ~ randint(0, T), noise ~ N(0, I), p_losses. The returned loss carries the graph; call backward on it
 * inside the caller's tidy.
 */
export function ldmLossStep(m: LatentDiffusion, z: T.Tensor, cond: T.Tensor | null, opts: LdmLossOptions = {}): { loss: T.Tensor; log: Record<string, number> } {
  const gen = opts.gen ?? T.defaultGenerator;
  const B = z.shape[0];
  if (z.ndim !== 4 || z.shape[1] !== m.config.channels) throw new RangeError(`ldmLossStep: expected latents [B, ${m.config.channels}, h, w], got [${z.shape}]`);
  const t = opts.t ?? T.randint([B], 0, m.config.timesteps, gen, 'int64');
  if (t.ndim !== 1 || t.shape[0] !== B) throw new RangeError(`ldmLossStep: timesteps must be [${B}], got [${t.shape}]`);
  const noise = opts.noise ?? T.randn(z.shape, gen);
  const { loss, log } = m.pLosses(z, cond, t, noise);
  return { loss, log };
}
