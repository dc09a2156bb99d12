// `ldm train`: a LatentDiffusion model trained as the reference's LatentDiffusion.training_step does
// (ldm/models/diffusion/ddpm.py): the frozen first stage encodes the batch (posterior sample × scale_factor),
// the conditioning encoder (trainable when cond_stage_trainable) embeds the label / caption, p_losses
// gives the loss; AdamW on the UNet (+ the condition encoder, + logvar when learned), the config's LR scheduler
// per optimizer step, EMA (LitEma) after every optimizer step.
// Beyond the reference: condition dropout for classifier-free guidance (training.cond_drop_prob: the label
// is replaced by the unconditional label, the caption by ""), cached latents (the dataset encoded once;
// each step still draws a fresh posterior sample from the stored moments), gradient accumulation and clipping
// as lightning.trainer asks.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { sampleLatents } from '../diffusion/sample-latents.js';
import { seededNoise } from '../diffusion/noise.js';
import { ddimTimesteps } from '../diffusion/schedules.js';
import { loadCheckpointInto } from '../loader/checkpoint.js';
import { readCheckpoint } from '../io/ckpt.js';
import { ConfigError, modelNode } from '../io/config.js';
import { makeGrid, tensorToImages, writePng } from '../io/image.js';
import { DiagonalGaussianDistribution } from '../models/autoencoder/distribution.js';
import { ClassEmbedder } from '../models/encoders/index.js';
import { instantiate } from '../loader/targets.js';
import { clipGradNorm, type Module } from '../nn/index.js';
import { saveCheckpoint, restoreOptimizer } from './checkpoint.js';
import { LitEma } from './ema.js';
import { createLdmOptimizer, ldmConditioning, ldmGetInput, ldmLossStep, prepareLdmTraining, scaleByStd, shouldScaleByStd } from './ldm-step.js';
import { getPath } from './config.js';
import { openTrainingData, trainLoader } from './data.js';
import { LatentCache, encodeLatentCache } from './latent-cache.js';
import { MetricsLogger, type LogRecord } from './logger.js';
import { LambdaLR, buildLrScheduler } from './lr-schedulers.js';
import { learningRate, openRun, prepareRun, type TrainOptions } from './setup.js';
import { gradNorm, restoreRng, rngStates, runLoop } from './trainer.js';
import { assertFiniteGradients, assertFiniteLosses, parameterNames } from './finite.js';
import { GradientReducer, broadcastModule, type GradientReducerStats } from './data-parallel.js';

export interface TrainResult {
  runDir: string;
  globalStep: number;
  interrupted: boolean;
  records: readonly LogRecord[];
  itPerSec: number;
  /** Data-parallel runs: the gradient all-reduce figures of this rank. */
  reducer?: GradientReducerStats;
}

/** The reference's init_from_ckpt target: a file, or one of our checkpoint folders (its model.safetensors). */
export function checkpointFile(p: string, what: string): string {
  if (!existsSync(p)) throw new Error(`${what}: ${p} does not exist`);
  if (statSync(p).isDirectory()) {
    const f = path.join(p, 'model.safetensors');
    if (!existsSync(f)) throw new Error(`${what}: ${p} is a folder without model.safetensors`);
    return f;
  }
  return p;
}

export async function trainLDM(o: TrainOptions): Promise<TrainResult> {
  const ctx = prepareRun(o, 'ldm');
  const { doc, training, say, seed, shard } = ctx;
  // ---- model --------------------------------------------------------------------------------------------
  T.manualSeed(seed);
  const initGen = new T.Generator(seed);
  const { node, path: mpath } = modelNode(doc, 'config');
  const model = instantiate<LatentDiffusion>(node, mpath, { gen: initGen });
  if (!(model instanceof LatentDiffusion)) throw new ConfigError('model.target: ldm train trains ldm.models.diffusion.ddpm.LatentDiffusion (use ldm train-autoencoder for first stages)');
  const cfg = model.config;
  const fs = model.first_stage_model as Module & { initFromCkpt?: (p?: string | null) => unknown; _ckptPath?: string | null };
  const fsCkpt = getPath(doc, 'model.params.first_stage_config.params.ckpt_path');
  if (typeof fsCkpt === 'string' && fsCkpt) {
    const file = checkpointFile(fsCkpt, 'model.params.first_stage_config.params.ckpt_path');
    const rep = loadCheckpointInto(fs, file, { strict: false });
    const missing = rep.missing.filter((k) => !k.startsWith('loss.'));
    if (missing.length || rep.mismatched.length) {
      throw new Error(`first stage ${file}: ${missing.length} missing weight(s) (${missing.slice(0, 4).join(', ')})${rep.mismatched.length ? `, shape mismatch at ${rep.mismatched[0].key}` : ''}: not an autoencoder for this config`);
    }
    say(`first stage: loaded ${file}`);
  } else if (!ctx.resume) {
    say('notice: model.params.first_stage_config.params.ckpt_path is not set: the first stage keeps its random initialisation');
  }
  const cs = model.cond_stage_model;
  const ldmCkpt = getPath(doc, 'model.params.ckpt_path');
  if (typeof ldmCkpt === 'string' && ldmCkpt && !ctx.resume) {
    const rep = loadCheckpointInto(model, checkpointFile(ldmCkpt, 'model.params.ckpt_path'), { strict: false, ignorePrefixes: (getPath(doc, 'model.params.ignore_keys') as string[] | undefined) ?? [] });
    say(`initialised from ${ldmCkpt} (${rep.missing.length} missing, ${rep.unexpected.length} unexpected keys)`);
  }

  // ---- data ----------------------------------------------------------------------------------------------
  const data = openTrainingData(doc);
  const condKey = cfg.cond_stage_key;
  const isClass = cs instanceof ClassEmbedder;
  const nClasses = isClass ? (cs as ClassEmbedder).nClasses : 0;
  const uncondLabel = training.uncond_label ?? (isClass ? nClasses - 1 : null);
  if (training.cond_drop_prob > 0) {
    if (!cs) throw new ConfigError('training.cond_drop_prob: this model is unconditional');
    if (isClass) {
      const dn = data.train.numClasses ?? 0;
      if (uncondLabel! < dn) throw new ConfigError(`training.uncond_label ${uncondLabel} is a class of the dataset (0…${dn - 1}); the cond stage needs n_classes ≥ ${dn + 1} (e.g. ${dn + 1}: the digits plus the "no class" label ${dn})`);
      if (uncondLabel! >= nClasses) throw new ConfigError(`training.uncond_label ${uncondLabel} is outside the ClassEmbedder's n_classes ${nClasses}`);
    }
  }
  if (training.image_every > 0) {
    try {
      ddimTimesteps('uniform', training.sample_steps, cfg.timesteps);
    } catch (e) {
      throw new ConfigError(`training.sample_steps: ${(e as Error).message}`);
    }
  }
  const useCache = training.cache_latents === true || (training.cache_latents === 'auto' && !data.augment);
  if (training.cache_latents === true && data.augment) throw new ConfigError('training.cache_latents: the dataset draws random augmentation; cached latents would freeze it (set cache_latents: false)');

  // ---- optimisation --------------------------------------------------------------------------------------
  const params = prepareLdmTraining(model);
  const lr = learningRate(ctx, data.batchSize);
  const opt = createLdmOptimizer(model, lr);
  const schedNode = getPath(doc, 'model.params.scheduler_config');
  const sched = schedNode ? new LambdaLR(opt, buildLrScheduler(schedNode, 'model.params.scheduler_config')) : null;
  // EMA, checkpoints, logs and images live on rank 0 of a data-parallel run.
  const ema = cfg.use_ema && shard.isMain ? new LitEma(model.model, { decay: training.ema_decay }) : null;
  if (ema && typeof ldmCkpt === 'string' && ldmCkpt && !ctx.resume) {
    // init_from_ckpt loads model_ema.* into the LitEma built before it: the EMA continues from the file's.
    const ck = readCheckpoint(checkpointFile(ldmCkpt, 'model.params.ckpt_path'));
    try {
      const own = ema.stateDict();
      if ([...own.keys()].every((k) => ck.stateDict.has(k))) {
        for (const [k, t] of own) ck.stateDict.get(k)!.readInto(t, k);
        say(`EMA: continuing from the model_ema.* weights of ${ldmCkpt} (${ema.numUpdatesValue} updates)`);
      } else say(`notice: ${ldmCkpt} has no complete model_ema.* set: the EMA starts from its live weights`);
    } finally {
      ck.close();
    }
  }
  const gen = new T.Generator(seed + 1);
  const loader = trainLoader(data, seed, shard.loaderShard);
  let epoch = 0;
  let scaleInitialised = !cfg.scale_by_std;
  let startStep = 0;
  let cache: LatentCache | null = null;

  if (ctx.resume) {
    const ck = ctx.resume;
    const weights = new Map([...ck.weights].filter(([k]) => !k.startsWith('model_ema.')));
    model.loadStateDict(weights, { source: path.join(ck.dir, 'model.safetensors') });
    if (ema) ema.loadStateDict(ck.weights, 'model_ema.', ck.dir);
    restoreOptimizer(ck, 0, opt);
    if (sched) sched.loadStateDict(ck.state.extra.scheduler as { last_step: number; base_lrs: number[] }, ck.dir);
    restoreRng(ck.state.rng, { train: gen }, ck.dir);
    loader.restore(ck.state.loader as ReturnType<typeof loader.state>);
    epoch = ck.state.epoch;
    startStep = ck.state.globalStep;
    scaleInitialised = true;
  }
  broadcastModule(model, shard.pg);
  const reducer = new GradientReducer(params, shard.pg);
  openRun(ctx);
  if (useCache) {
    cache = encodeLatentCache(model, data.train, { file: path.join(ctx.run.root, 'latent-cache.safetensors'), say, quiet: ctx.quiet, shard });
  }

  // ---- one step --------------------------------------------------------------------------------------------
  // Which of this rank's rows lose their condition (one draw per example of the global batch).
  const dropped = (n: number): boolean[] => shard.drawEach(n, () => gen.uniform() < training.cond_drop_prob);
  const dropCond = (b: { class_label?: T.Tensor; caption?: string[] }): unknown => {
    if (condKey === 'class_label' || isClass) {
      if (!b.class_label) throw new Error(`batch has no class_label (cond_stage_key ${condKey})`);
      const labels = b.class_label.toArray();
      if (training.cond_drop_prob > 0) dropped(labels.length).forEach((d, i) => d && (labels[i] = uncondLabel!));
      return T.tensor(labels, [labels.length], 'int64');
    }
    if (condKey === 'caption' || condKey === 'txt') {
      if (!b.caption) throw new Error(`batch has no caption (cond_stage_key ${condKey})`);
      if (training.cond_drop_prob === 0) return b.caption;
      const d = dropped(b.caption.length);
      return b.caption.map((c, i) => (d[i] ? training.uncond_prompt : c));
    }
    throw new ConfigError(`model.params.cond_stage_key: ${condKey} is not a label or a caption; ldm train conditions on class_label or caption`);
  };

  // The latents of this rank's rows, with this rank's slice of the global batch's posterior noise;
  // scale_by_std sums over the ranks, giving every rank the factor of the whole first global batch.
  const posteriorNoise = (shape: number[]): T.Tensor | T.Generator => (shard.pg.size === 1 ? gen : shard.draw(shape, (g) => T.randn(g, gen)));
  const latentsOf = (b: { image: T.Tensor; indices: number[] }, batchIdx: number): T.Tensor => {
    const shape = [b.image.shape[0], cfg.channels, b.image.shape[2] / model.firstStageFactor, b.image.shape[3] / model.firstStageFactor];
    if (!scaleInitialised && shouldScaleByStd(model, { epoch, globalStep: 0, batchIdx, restarted: !!ctx.resume })) {
      const s = scaleByStd(model, b.image, posteriorNoise(shape), (v) => shard.sum(v));
      say(`scale_by_std: scale_factor = ${s.toPrecision(6)} (1 / std of the first batch's latents)`);
    }
    scaleInitialised = true;
    if (!cache) return T.tidy(() => ldmGetInput(model, b.image, posteriorNoise(shape)));
    return T.noGrad(() => T.tidy(() => {
      if (!cache!.gaussian) return model.getFirstStageEncoding(cache!.moments(b.indices));
      return model.getFirstStageEncoding(new DiagonalGaussianDistribution(cache!.moments(b.indices)), posteriorNoise(shape));
    }));
  };

  const accumulate = ctx.trainer.accumulate;
  const names = parameterNames(model);
  const stepFn = async (globalStep: number): Promise<Record<string, number>> => {
    const logs: Record<string, number> = {};
    for (let a = 0; a < accumulate; a++) {
      const batch = await loader.next();
      epoch = loader.state().epoch;
      const x0 = latentsOf(batch, a);
      const log = T.tidy(() => {
        const c = ldmConditioning(model, dropCond(batch));
        // t and noise of the global batch (one process draws exactly these), this rank's rows.
        const draws = shard.pg.size === 1 ? { gen } : { t: shard.draw([x0.shape[0]], (g) => T.randint(g, 0, cfg.timesteps, gen, 'int64')), noise: shard.draw(x0.shape, (g) => T.randn(g, gen)) };
        const { loss, log } = ldmLossStep(model, x0, c, draws);
        const run = () => T.backward(accumulate > 1 ? T.mul(loss, 1 / accumulate) : loss);
        // Gradients are averaged over the ranks once, at the last accumulated batch.
        if (a === accumulate - 1) reducer.backward(run);
        else run();
        return log;
      });
      x0.dispose();
      batch.image.dispose();
      for (const [k, v] of Object.entries(log)) logs[k] = (logs[k] ?? 0) + v / accumulate;
    }
    Object.assign(logs, shard.meanLogs(logs));
    // NaN / Inf stop the run before the optimizer applies them (the same on every rank: means, reduced gradients).
    assertFiniteLosses(globalStep + 1, logs);
    const norm = gradNorm(params);
    if (!Number.isFinite(norm)) assertFiniteGradients(globalStep + 1, params, names);
    logs.grad_norm = ctx.trainer.clipVal ? clipGradNorm(params, ctx.trainer.clipVal) : norm;
    logs.lr_abs = opt.lr;
    opt.step();
    opt.zeroGrad();
    sched?.step();
    ema?.update(model.model);
    logs.epoch = epoch;
    logs.global_step = globalStep;
    return logs;
  };

  // ---- images ------------------------------------------------------------------------------------------
  const sampleGrid = (globalStep: number): void => {
    if (!shard.isMain) return;
    const rows = isClass ? Math.min(10, Math.max(1, (data.train.numClasses ?? nClasses))) : 1;
    const cols = Math.max(1, Math.floor(training.max_images / rows));
    const n = rows * cols;
    let cond: T.Tensor | null = null, uncond: T.Tensor | undefined;
    const scale = training.cond_drop_prob > 0 && cs ? training.sample_scale : 1;
    const live = ema ? [...model.model.parameters()] : [];
    if (ema) {
      ema.store(live);
      ema.copyTo(model.model);
    }
    model.eval();
    try {
      T.noGrad(() => T.tidy(() => {
        if (cs) {
          let raw: unknown;
          if (isClass) raw = T.tensor(Array.from({ length: n }, (_, i) => Math.floor(i / cols)), [n], 'int64');
          else raw = Array.from({ length: n }, (_, i) => data.validation?.get(Math.floor(i / cols) % data.validation.length).caption ?? '');
          cond = model.getLearnedConditioning(raw);
          if (scale !== 1) {
            const u = isClass ? T.tensor(new Array(n).fill(uncondLabel), [n], 'int64') : new Array(n).fill(training.uncond_prompt);
            uncond = model.getLearnedConditioning(u);
          }
        }
        const shape = [n, cfg.channels, cfg.image_size, cfg.image_size];
        const r = sampleLatents(model, { sampler: 'ddim', steps: training.sample_steps, eta: 0, scale, cond, uncond, shape, noise: seededNoise(1234) });
        const imgs = tensorToImages(T.clamp(model.decodeFirstStage(r.x), -1, 1));
        writePng(path.join(ctx.run.images, `samples_gs-${String(globalStep).padStart(6, '0')}.png`), makeGrid(imgs, cols), { step: String(globalStep), Software: 'ldm-ts' });
      }));
    } finally {
      prepareLdmTraining(model);
      if (ema) ema.restore(live);
    }
  };

  const save = (globalStep: number): void => {
    if (!shard.isMain) return;
    const weights = new Map(model.stateDict());
    if (ema) for (const [k, t] of ema.stateDict()) weights.set(k, t);
    saveCheckpoint(ctx.run.checkpoints, {
      weights, optimizers: [opt], configYaml: ctx.configYaml, keepLast: training.keep_last,
      state: {
        kind: 'ldm', globalStep, epoch, loader: loader.state(), rng: rngStates({ train: gen }), schedulerStep: sched?.lastStep ?? globalStep,
        extra: { seed, scheduler: sched?.stateDict() ?? null, scale_factor: model.scaleFactor },
      },
    });
  };

  say(`training ${(params.reduce((n, p) => n + p.size, 0) / 1e6).toFixed(2)} M parameters (${model.numParameters() / 1e6 < 0.01 ? model.numParameters() : (model.numParameters() / 1e6).toFixed(2) + ' M'} in the model), batch ${data.batchSize}${accumulate > 1 ? ` × ${accumulate} accumulated` : ''}, ${cache ? 'cached latents' : 'latents encoded per step'}, steps ${startStep} → ${ctx.maxSteps}; run folder ${ctx.run.root}`);
  const logger = shard.isMain ? new MetricsLogger(ctx.run.metrics, ctx.run.curve, ['train/loss', 'train/loss_simple', 'grad_norm', 'lr_abs'], ctx.resume ? startStep : null) : null;
  try {
    const r = await runLoop({
      startStep, maxSteps: ctx.maxSteps, ckptEvery: training.ckpt_every, imageEvery: training.image_every, curveEvery: training.curve_every,
      logEvery: ctx.trainer.logEvery, barKeys: ['train/loss', 'lr_abs'], tty: ctx.tty, quiet: ctx.quiet, stopAfter: o.stopAfter, anyStops: (s) => shard.anyStops(s),
    }, { step: stepFn, save, images: sampleGrid }, logger, say);
    if (shard.pg.size > 1) say(`data-parallel: ${reducer.stats.buckets} gradient bucket(s) of ${reducer.stats.elements} values; waiting on all-reduce ${reducer.stats.waitSeconds.toFixed(2)} s, issuing ${reducer.stats.issueSeconds.toFixed(2)} s in total`);
    return { runDir: ctx.run.root, globalStep: r.globalStep, interrupted: r.interrupted, records: logger?.records ?? [], itPerSec: r.itPerSec, reducer: reducer.stats };
  } finally {
    await loader.close();
  }
}
