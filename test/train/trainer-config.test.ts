// Training configs: key=value overrides typed like YAML, main.py's LR scaling and its printout,
// lightning.trainer fields honoured or refused, the training: section, and the CLI (help, bad options).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOverrides, parseTrainer, parseTrainingSection, scaledLearningRate } from '../../src/train/config.js';
import { parseTrainArgs, TRAIN_USAGE } from '../../src/cli/train.js';
import { TRAIN_AUTOENCODER_USAGE } from '../../src/cli/train-autoencoder.js';
import { main } from '../../src/cli/main.js';

test('overrides: dotted paths, YAML-typed values, list indices, new keys; bad paths named', () => {
  const doc = { model: { base_learning_rate: 1e-6, params: { unet_config: { params: { model_channels: 256, channel_mult: [1, 2, 4] } } } } };
  const d = applyOverrides(doc, [
    'model.params.unet_config.params.model_channels=64', 'model.base_learning_rate=2e-6', 'model.params.unet_config.params.channel_mult=[1,2]',
    'lightning.trainer.max_steps=100', 'model.params.use_ema=false', 'training.uncond_prompt=', 'model.params.cond_stage_key=class_label', 'model.params.x=null',
  ]) as any;
  assert.equal(d.model.params.unet_config.params.model_channels, 64);
  assert.equal(d.model.base_learning_rate, 2e-6);
  assert.deepEqual(d.model.params.unet_config.params.channel_mult, [1, 2]);
  assert.equal(d.lightning.trainer.max_steps, 100);
  assert.equal(d.model.params.use_ema, false);
  assert.equal(d.training.uncond_prompt, '');
  assert.equal(d.model.params.cond_stage_key, 'class_label');
  assert.equal(d.model.params.x, null);
  assert.equal(doc.model.params.unet_config.params.model_channels, 256, 'the input is not modified');
  assert.equal((applyOverrides(doc, ['model.params.unet_config.params.channel_mult.1=8']) as any).model.params.unet_config.params.channel_mult[1], 8);
  assert.throws(() => applyOverrides(doc, ['model.base_learning_rate.x=1']), /model\.base_learning_rate is a 0\.000001, not a mapping/);
  assert.throws(() => applyOverrides(doc, ['model.params.unet_config.params.channel_mult.7=1']), /not an index of a list of 3/);
  assert.throws(() => applyOverrides(doc, ['novalue']), /expected key\.path=value/);
});

test('learning rate: accumulate × ngpu × batch × base_lr, printed as main.py does; --scale-lr false keeps base_lr', () => {
  const s = scaledLearningRate(1e-6, 64, 2, true);
  assert.equal(s.lr, 128e-6);
  assert.equal(s.message, 'Setting learning rate to 1.28e-4 = 2 (accumulate_grad_batches) * 1 (num_gpus) * 64 (batchsize) * 1.00e-6 (base_lr)');
  const n = scaledLearningRate(4.5e-6, 12, 2, false);
  assert.equal(n.lr, 4.5e-6);
  assert.match(n.message, /NOT USING LR SCALING[\s\S]*Setting learning rate to 4\.50e-6/);
});

test('lightning.trainer: honoured fields, notices for no-ops, errors for the unsupported', () => {
  const notes: string[] = [];
  const t = parseTrainer({ lightning: { trainer: { benchmark: true, gpus: '0,', max_steps: 10, accumulate_grad_batches: 2, gradient_clip_val: 0.5, log_every_n_steps: 5 } } }, (s) => void notes.push(s));
  assert.deepEqual(t, { maxSteps: 10, maxEpochs: null, accumulate: 2, clipVal: 0.5, logEvery: 5 });
  assert.match(notes[0], /benchmark, gpus have no effect/);
  assert.throws(() => parseTrainer({ lightning: { trainer: { precision: 16 } } }, () => {}), /precision: only 32-bit/);
  assert.throws(() => parseTrainer({ lightning: { trainer: { gradient_clip_algorithm: 'value' } } }, () => {}), /only "norm"/);
  assert.throws(() => parseTrainer({ lightning: { trainer: { overfit_batches: 1 } } }, () => {}), /lightning\.trainer\.overfit_batches: not supported/);
  assert.throws(() => parseTrainer({ lightning: { trainer: { accumulate_grad_batches: 0 } } }, () => {}), /accumulate_grad_batches: expected an integer ≥ 1/);
});

test('training section: defaults, image_logger cadence, checked values', () => {
  const s = parseTrainingSection({ lightning: { callbacks: { image_logger: { params: { batch_frequency: 750, max_images: 4 } } } }, training: { cond_drop_prob: 0.1 } });
  assert.equal(s.image_every, 750);
  assert.equal(s.max_images, 4);
  assert.equal(s.cond_drop_prob, 0.1);
  assert.equal(s.keep_last, 3);
  assert.throws(() => parseTrainingSection({ training: { cond_drop: 0.1 } }), /training\.cond_drop: unknown key/);
  assert.throws(() => parseTrainingSection({ training: { cond_drop_prob: 1.5 } }), /probability/);
  assert.throws(() => parseTrainingSection({ training: { cache_latents: 'yes' } }), /auto, true or false/);
});

test('cli: arguments, overrides, help with every option and its default', async () => {
  const o = parseTrainArgs(['--config', 'a.yaml', '--config=b.yaml', '--name', 'x', '--max-steps', '100', '--seed', '7', '--no-scale-lr', 'model.params.a=1', '--ckpt-every', '50']);
  assert.deepEqual(o.config, ['a.yaml', 'b.yaml']);
  assert.deepEqual(o.overrides, ['model.params.a=1']);
  assert.equal(o.maxSteps, 100);
  assert.equal(o.seed, 7);
  assert.equal(o.scaleLr, false);
  assert.equal(o.ckptEvery, 50);
  assert.equal(parseTrainArgs(['--scale-lr', 'false']).scaleLr, false);
  assert.throws(() => parseTrainArgs(['--lpips-weights', 'x']), /unknown option --lpips-weights/);
  assert.equal(parseTrainArgs(['--lpips-weights', 'x'], { lpips: true }).lpipsWeights, 'x');
  assert.throws(() => parseTrainArgs(['--max-steps', '0']), /--max-steps expects an integer ≥ 1/);
  assert.throws(() => parseTrainArgs(['stray']), /unexpected argument "stray"/);
  for (const opt of ['--config', '--name', '--logdir', '--resume', '--max-steps', '--seed', '--scale-lr', '--no-scale-lr', '--ckpt-every', '--keep-last', '--image-every', '--quiet']) {
    assert.ok(TRAIN_USAGE.includes(opt) && TRAIN_AUTOENCODER_USAGE.includes(opt), opt);
  }
  assert.match(TRAIN_USAGE, /default: 23/);
  assert.match(TRAIN_AUTOENCODER_USAGE, /--lpips-weights/);
  const err = console.error, log = console.log;
  let out = '';
  console.error = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  try {
    assert.equal(await main(['train', '--help']), 0);
    assert.equal(await main(['train', '--bogus']), 2);
    assert.equal(await main(['train']), 2);
    assert.equal(await main(['train-autoencoder', '--config', '/nonexistent.yaml']), 2);
  } finally {
    console.error = err;
    console.log = log;
  }
  assert.match(out, /unknown option --bogus/);
  assert.match(out, /give --config/);
  assert.match(out, /nonexistent\.yaml/);
});
