// `ldm train-autoencoder`: a first stage (AutoencoderKL with LPIPSWithDiscriminator, VQModel with
// VQLPIPSWithDiscriminator) trained as the reference's training_step does — per batch a generator pass and
// step (optimizer 0: encoder, decoder, quant convs) and a discriminator pass and step (optimizer 1), Adam with
// betas (0.5, 0.9) (src/train/autoencoder-step.ts). LPIPS needs VGG16 + linear-head weights that are not
// downloaded here: give them with --lpips-weights (or training.lpips_weights); without them the perceptual
// weight is set to 0, with one notice.

import path from 'node:path';
import * as T from '../engine/index.js';
import { ConfigError, modelNode } from '../io/config.js';
import { makeGrid, tensorToImages, writePng } from '../io/image.js';
import { AutoencoderKL, VQModel } from '../models/autoencoder/autoencoder.js';
import { LPIPSWithDiscriminator, VQLPIPSWithDiscriminator, loadLpipsWeights } from '../models/losses/index.js';
import { instantiate } from '../loader/targets.js';
import { readCheckpoint } from '../io/ckpt.js';
import { loadCheckpointInto } from '../loader/checkpoint.js';
import { autoencoderTrainStep, createAutoencoderOptimizers } from './autoencoder-step.js';
import { restoreOptimizer, saveCheckpoint } from './checkpoint.js';
import { getPath } from './config.js';
import { openTrainingData, trainLoader } from './data.js';
import { MetricsLogger } from './logger.js';
import { learningRate, openRun, prepareRun, type TrainOptions } from './setup.js';
import { restoreRng, rngStates, runLoop } from './trainer.js';
import { assertFiniteGradients, assertFiniteLosses, parameterNames } from './finite.js';
import { checkpointFile, type TrainResult } from './train-ldm.js';
import { GradientReducer, broadcastModule } from './data-parallel.js';

const PERCEPTUAL = 'loss.perceptual_loss.';

export async function trainAutoencoder(o: TrainOptions): Promise<TrainResult> {
  const ctx = prepareRun(o, 'autoencoder');
  const { doc, training, say, seed, shard } = ctx;
  T.manualSeed(seed);
  const { node, path: mpath } = modelNode(doc, 'config');
  const model = instantiate<AutoencoderKL | VQModel>(node, mpath, { gen: new T.Generator(seed) });
  if (!(model instanceof AutoencoderKL) && !(model instanceof VQModel)) {
    throw new ConfigError('model.target: ldm train-autoencoder trains ldm.models.autoencoder.AutoencoderKL or VQModel');
  }
  const loss = model.loss;
  if (!(loss instanceof LPIPSWithDiscriminator) && !(loss instanceof VQLPIPSWithDiscriminator)) {
    throw new ConfigError('model.params.lossconfig: training needs LPIPSWithDiscriminator (KL) or VQLPIPSWithDiscriminator (VQ) as the loss');
  }
  // ---- LPIPS weights ---------------------------------------------------------------------------------------
  let lpipsLoaded = false;
  if (training.lpips_weights) {
    const ck = readCheckpoint(training.lpips_weights);
    const prefix = [...ck.stateDict.keys()].some((k) => k.startsWith(PERCEPTUAL)) ? PERCEPTUAL : '';
    ck.close();
    loadLpipsWeights(loss.perceptual_loss, { full: training.lpips_weights, prefix });
    lpipsLoaded = true;
    say(`LPIPS: weights from ${training.lpips_weights}`);
  }
  const ckpt = getPath(doc, 'model.params.ckpt_path');
  if (typeof ckpt === 'string' && ckpt && !ctx.resume) {
    const file = checkpointFile(ckpt, 'model.params.ckpt_path');
    const ignore = (getPath(doc, 'model.params.ignore_keys') as string[] | undefined) ?? [];
    const rep = loadCheckpointInto(model, file, { strict: false, ignorePrefixes: ignore });
    lpipsLoaded ||= !rep.missing.some((k) => k.startsWith(PERCEPTUAL));
    say(`initialised from ${file} (${rep.missing.length} missing, ${rep.unexpected.length} unexpected keys)`);
  }
  if (!lpipsLoaded && loss._s.perceptualWeight > 0) {
    say(`notice: no LPIPS weights supplied (--lpips-weights <file> or training.lpips_weights; VGG16 + lin heads, e.g. a first-stage checkpoint's loss.perceptual_loss.*): training with perceptual_weight 0 instead of ${loss._s.perceptualWeight} (L1 + KL + GAN only)`);
    loss._s.perceptualWeight = 0;
  }
  const dropPerceptual = loss._s.perceptualWeight === 0 && !lpipsLoaded;

  // ---- data and optimisers ----------------------------------------------------------------------------------
  const data = openTrainingData(doc);
  if (data.train.channels !== model.encoder._cfg.in_channels) {
    throw new ConfigError(`model.params.ddconfig.in_channels is ${model.encoder._cfg.in_channels} but the dataset has ${data.train.channels} channel(s)`);
  }
  if (ctx.trainer.accumulate !== 1) throw new ConfigError('lightning.trainer.accumulate_grad_batches: the autoencoder trainer steps both optimizers every batch (set it to 1)');
  if (ctx.trainer.clipVal) throw new ConfigError('lightning.trainer.gradient_clip_val: not supported by the autoencoder trainer (the reference first stages train without clipping)');
  const lr = learningRate(ctx, data.batchSize);
  const lrGFactor = typeof getPath(doc, 'model.params.lr_g_factor') === 'number' ? (getPath(doc, 'model.params.lr_g_factor') as number) : 1;
  const optimizers = createAutoencoderOptimizers(model, lr, { lrGFactor });
  const opts = [optimizers.ae, optimizers.disc];
  const gen = new T.Generator(seed + 1);
  const loader = trainLoader(data, seed, shard.loaderShard);
  let epoch = 0;
  let startStep = 0;
  model.train();
  if (ctx.resume) {
    const ck = ctx.resume;
    const rep = model.loadStateDict(ck.weights, { strict: false, source: path.join(ck.dir, 'model.safetensors') });
    const missing = rep.missing.filter((k) => !(dropPerceptual && k.startsWith(PERCEPTUAL)));
    if (missing.length || rep.unexpected.length || rep.mismatched.length) {
      throw new Error(`${ck.dir}: weights do not fit this model (${missing.length} missing, ${rep.unexpected.length} unexpected, ${rep.mismatched.length} mis-shaped; e.g. ${[...missing, ...rep.unexpected][0] ?? rep.mismatched[0]?.key})`);
    }
    opts.forEach((op, k) => restoreOptimizer(ck, k, op));
    restoreRng(ck.state.rng, { train: gen }, ck.dir);
    loader.restore(ck.state.loader as ReturnType<typeof loader.state>);
    epoch = ck.state.epoch;
    startStep = ck.state.globalStep;
  }
  broadcastModule(model, shard.pg);
  const reducers = { generator: new GradientReducer(optimizers.ae.params(), shard.pg), discriminator: new GradientReducer(optimizers.disc.params(), shard.pg) };
  openRun(ctx);
  // A fixed validation batch for the reconstruction grids.
  const shown = Math.max(1, Math.min(training.max_images, (data.validation ?? data.train).length));
  const fixed = (() => {
    const ds = data.validation ?? data.train;
    const per = ds.channels * ds.size * ds.size;
    const buf = new Float32Array(shown * per);
    for (let i = 0; i < shown; i++) buf.set(ds.get(i).image, i * per);
    return T.keep(T.tensor(buf, [shown, ds.channels, ds.size, ds.size]));
  })();

  const names = parameterNames(model);
  const stepFn = async (globalStep: number): Promise<Record<string, number>> => {
    const batch = await loader.next();
    epoch = loader.state().epoch;
    let noise: { generator: T.Tensor; discriminator: T.Tensor } | undefined;
    if (shard.pg.size > 1 && model instanceof AutoencoderKL) {
      // Data-parallel: the posterior noise of the global batch (what one process draws), this rank's rows.
      const f = 2 ** (model._ddconfig.ch_mult.length - 1);
      const shape = [batch.image.shape[0], model._embedDim, batch.image.shape[2] / f, batch.image.shape[3] / f];
      noise = { generator: T.keep(shard.draw(shape, (g) => T.randn(g, gen))), discriminator: T.keep(shard.draw(shape, (g) => T.randn(g, gen))) };
    }
    let logs: Record<string, number>;
    try {
      ({ logs } = autoencoderTrainStep(model, batch.image, globalStep, {
        optimizers, gen, noise, backward: shard.pg.size > 1 ? (pass, run) => reducers[pass].backward(run) : undefined,
        // Before each optimizer step: a NaN / Inf loss (one process) or gradient (reduced: the same on every rank).
        observe: (phase, info) => {
          if (phase !== 'backward') return;
          if (shard.pg.size === 1) assertFiniteLosses(globalStep + 1, { ...info.log, [info.pass === 'generator' ? 'aeloss' : 'discloss']: info.loss.item() }, `the ${info.pass} loss`);
          assertFiniteGradients(globalStep + 1, (info.pass === 'generator' ? optimizers.ae : optimizers.disc).params(), names, `${info.pass} gradient`);
        },
      }));
    } finally {
      batch.image.dispose();
      noise?.generator.dispose();
      noise?.discriminator.dispose();
    }
    const mean = shard.meanLogs(logs);
    assertFiniteLosses(globalStep + 1, mean);
    return { ...mean, lr_abs: optimizers.ae.lr, epoch, global_step: globalStep };
  };

  const images = (globalStep: number): void => {
    if (!shard.isMain) return;
    T.noGrad(() => T.tidy(() => {
      const enc = model.encode(fixed);
      const rec = model instanceof AutoencoderKL ? model.decode((enc as ReturnType<AutoencoderKL['encode']>).mode()) : model.decode((enc as ReturnType<VQModel['encode']>).quant);
      const imgs = [...tensorToImages(fixed), ...tensorToImages(T.clamp(rec, -1, 1))];
      writePng(path.join(ctx.run.images, `reconstructions_gs-${String(globalStep).padStart(6, '0')}.png`), makeGrid(imgs, shown), { step: String(globalStep), rows: 'inputs, reconstructions', Software: 'ldm-ts' });
    }));
  };

  const save = (globalStep: number): void => {
    if (!shard.isMain) return;
    const weights = new Map([...model.stateDict()].filter(([k]) => !(dropPerceptual && k.startsWith(PERCEPTUAL))));
    saveCheckpoint(ctx.run.checkpoints, {
      weights, optimizers: opts, configYaml: ctx.configYaml, keepLast: training.keep_last,
      state: { kind: 'autoencoder', globalStep, epoch, loader: loader.state(), rng: rngStates({ train: gen }), schedulerStep: globalStep, extra: { seed, perceptual_weights_saved: !dropPerceptual } },
    });
  };

  const trainable = opts.reduce((n, op) => n + op.params().reduce((m, p) => m + p.size, 0), 0);
  say(`training ${(trainable / 1e6).toFixed(2)} M parameters (autoencoder + discriminator), batch ${data.batchSize}, steps ${startStep} → ${ctx.maxSteps}; run folder ${ctx.run.root}`);
  const logger = shard.isMain ? new MetricsLogger(ctx.run.metrics, ctx.run.curve, ['train/rec_loss', 'train/kl_loss', 'train/nll_loss', 'train/disc_loss', 'train/g_loss', 'train/d_weight'], ctx.resume ? startStep : null) : null;
  try {
    const r = await runLoop({
      startStep, maxSteps: ctx.maxSteps, ckptEvery: training.ckpt_every, imageEvery: training.image_every, curveEvery: training.curve_every,
      logEvery: ctx.trainer.logEvery, barKeys: ['train/rec_loss', 'train/disc_loss'], tty: ctx.tty, quiet: ctx.quiet, stopAfter: o.stopAfter, anyStops: (s) => shard.anyStops(s),
    }, { step: stepFn, save, images }, logger, say);
    return { runDir: ctx.run.root, globalStep: r.globalStep, interrupted: r.interrupted, records: logger?.records ?? [], itPerSec: r.itPerSec, reducer: reducers.generator.stats };
  } finally {
    fixed.dispose();
    await loader.close();
  }
}
