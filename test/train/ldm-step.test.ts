import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { registerSchedule } from '../../src/diffusion/schedules.js';
import { instantiate } from '../../src/loader/targets.js';
import { AdamW, Adam } from '../../src/nn/optim.js';
import { createLdmOptimizer, ldmConditioning, ldmGetInput, ldmLossStep, ldmTrainableParameters, prepareLdmTraining, scaleByStd } from '../../src/train/ldm-step.js';

const f32 = Math.fround;

function ldm(extra: Record<string, unknown> = {}, conditional = true): LatentDiffusion {
  const unet = conditional
    ? { image_size: 4, in_channels: 4, out_channels: 4, model_channels: 32, attention_resolutions: [1], num_res_blocks: 1, channel_mult: [1], num_heads: 2, use_spatial_transformer: true, transformer_depth: 1, context_dim: 16, legacy: false }
    : { image_size: 4, in_channels: 4, out_channels: 4, model_channels: 32, attention_resolutions: [], num_res_blocks: 1, channel_mult: [1], num_heads: 2 };
  return instantiate<LatentDiffusion>({
    target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
    params: {
      linear_start: 0.0015, linear_end: 0.0195, timesteps: 1000, first_stage_key: 'image', image_size: 4, channels: 4,
      cond_stage_key: 'class_label', conditioning_key: conditional ? 'crossattn' : undefined, cond_stage_trainable: conditional, scale_factor: 1.0,
      unet_config: { target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel', params: unet },
      first_stage_config: {
        target: 'ldm.models.autoencoder.AutoencoderKL',
        params: { embed_dim: 4, lossconfig: { target: 'torch.nn.Identity' }, ddconfig: { double_z: true, z_channels: 4, resolution: 8, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 } },
      },
      cond_stage_config: conditional ? { target: 'ldm.modules.encoders.modules.ClassEmbedder', params: { embed_dim: 16, n_classes: 3, key: 'class_label' } } : '__is_unconditional__',
      ...extra,
    },
  }, 'model', { gen: new T.Generator(3) });
}

test('configure_optimizers: UNet + trainable conditioning + learned logvar; the first stage frozen in eval mode; AdamW defaults', () => {
  const m = ldm({ learn_logvar: true, logvar_init: 0.5 });
  const trainable = prepareLdmTraining(m);
  const want = [...m.model.parameters(), ...m.cond_stage_model!.parameters(), m.logvar!];
  assert.equal(trainable.length, want.length);
  trainable.forEach((p, i) => assert.equal(p, want[i]));
  assert.ok(m.first_stage_model.parameters().every((p) => !p.requiresGrad));
  assert.ok([...m.first_stage_model.namedModules()].every(([, mod]) => !mod.training), 'first stage stays in eval mode');
  assert.ok(m.model.training && m.cond_stage_model!.training);
  const opt = createLdmOptimizer(m, 1e-4);
  assert.ok(opt instanceof AdamW);
  assert.deepEqual([opt.lr, opt.groups[0].options.weight_decay, opt.groups[0].options.beta1, opt.groups[0].options.beta2], [1e-4, 0.01, 0.9, 0.999]);
  assert.ok(createLdmOptimizer(m, 1e-4, { optimizer: 'Adam' }) instanceof Adam);

  const frozenCond = ldm({ cond_stage_trainable: false });
  prepareLdmTraining(frozenCond);
  assert.equal(ldmTrainableParameters(frozenCond).length, frozenCond.model.parameters().length);
  assert.ok(frozenCond.cond_stage_model!.parameters().every((p) => !p.requiresGrad) && !frozenCond.cond_stage_model!.training);
  const c = ldmConditioning(frozenCond, T.tensor([0, 2], [2], 'int64'))!;
  assert.equal(c.requiresGrad, false, 'a frozen conditioning encoder runs without a graph');
  assert.equal(ldmConditioning(m, T.tensor([0, 2], [2], 'int64'))!.requiresGrad, true);
});

test('lvlb_weights: eps β²/(2σ²α(1−ᾱ)), x0 ½√ᾱ/(2−ᾱ) in float32, index 0 = index 1', () => {
  const s = registerSchedule({ timesteps: 1000, linear_start: 0.0015, linear_end: 0.0195 });
  const ac = s.alphas_cumprod;
  for (const i of [1, 7, 500, 999]) assert.equal(s.lvlb_weights_x0[i], f32(f32(0.5 * f32(Math.sqrt(ac[i]))) / f32(2 - ac[i])));
  assert.equal(s.lvlb_weights_x0[0], s.lvlb_weights_x0[1]);
  assert.equal(s.lvlb_weights_eps[0], s.lvlb_weights_eps[1]);
  const b = s.betas[7];
  assert.ok(Math.abs(s.lvlb_weights_eps[7] - (b * b) / (2 * s.posterior_variance[7] * (1 - b) * (1 - ac[7]))) < 1e-6 * s.lvlb_weights_eps[7]);
  assert.deepEqual(Array.from(ldm({ parameterization: 'x0' }, false).lvlb_weights.toArray().slice(0, 4)), Array.from(s.lvlb_weights_x0.slice(0, 4)));
  assert.deepEqual(Array.from(ldm({}, false).lvlb_weights.toArray().slice(0, 4)), Array.from(s.lvlb_weights_eps.slice(0, 4)));
});

test('p_losses log dict: loss_simple, loss_vlb, loss (+ loss_gamma and the unprefixed logvar mean when learned); loss = γ·w + elbo·vlb', () => {
  const m = ldm({ learn_logvar: true, logvar_init: 0.5, original_elbo_weight: 0.1, l_simple_weight: 2 });
  prepareLdmTraining(m);
  const gen = new T.Generator(5);
  const z = T.randn([2, 4, 4, 4], gen);
  const cond = ldmConditioning(m, T.tensor([1, 0], [2], 'int64'));
  const { loss, log } = ldmLossStep(m, z, cond, { gen });
  assert.deepEqual(Object.keys(log).sort(), ['logvar', 'train/loss', 'train/loss_gamma', 'train/loss_simple', 'train/loss_vlb']);
  assert.ok(Math.abs(log.logvar - 0.5) < 1e-7);
  assert.ok(Math.abs(log['train/loss'] - (2 * log['train/loss_gamma'] + 0.1 * log['train/loss_vlb'])) < 1e-5 * log['train/loss']);
  assert.equal(loss.item(), log['train/loss']);
  loss.backward();
  assert.ok(m.logvar!.grad, 'the learned logvar gets a gradient');
  const plain = ldm({}, false);
  prepareLdmTraining(plain);
  const r = ldmLossStep(plain, z, null, { gen });
  assert.deepEqual(Object.keys(r.log).sort(), ['train/loss', 'train/loss_simple', 'train/loss_vlb']);
  assert.equal(r.log['train/loss'], r.log['train/loss_simple']);
  assert.throws(() => ldmLossStep(plain, T.zeros([2, 3, 4, 4]), null), /expected latents \[B, 4, h, w\], got \[2,3,4,4\]/);
});

test('scale_by_std: scale_factor = 1/std(z) (unbiased, float32) of the first batch, then get_input scales by it', () => {
  const m = ldm({ scale_by_std: true }, false);
  prepareLdmTraining(m);
  const x = T.rand([2, 3, 8, 8], new T.Generator(8), -1, 1);
  const noise = T.randn([2, 4, 4, 4], new T.Generator(9));
  const z = T.contiguousData(ldmGetInput(m, x, noise)) as Float32Array;
  const mean = z.reduce((a, v) => a + v, 0) / z.length;
  const std = Math.sqrt(z.reduce((a, v) => a + (v - mean) ** 2, 0) / (z.length - 1));
  const s = scaleByStd(m, x, noise);
  assert.equal(s, f32(1 / f32(std)));
  assert.equal(m.scaleFactor, s);
  const z2 = T.contiguousData(ldmGetInput(m, x, noise)) as Float32Array;
  assert.ok(Math.abs(z2[3] - f32(z[3] * s)) <= 1e-6 * Math.abs(z2[3]));
  assert.throws(() => scaleByStd(m, x, noise), /scale_factor is .*, not 1/);
  assert.throws(() => scaleByStd(ldm({}, false), x), /not built with scale_by_std/);
});

test('ldmLossStep draws t in [0, T) and noise from the generator (same seed, same loss)', () => {
  const m = ldm({}, false);
  prepareLdmTraining(m);
  const z = T.randn([3, 4, 4, 4], new T.Generator(1));
  const a = T.noGrad(() => ldmLossStep(m, z, null, { gen: new T.Generator(4) }).log['train/loss']);
  const b = T.noGrad(() => ldmLossStep(m, z, null, { gen: new T.Generator(4) }).log['train/loss']);
  const c = T.noGrad(() => ldmLossStep(m, z, null, { gen: new T.Generator(5) }).log['train/loss']);
  assert.equal(a, b);
  assert.notEqual(a, c);
  const t = T.tensor([999, 0, 5], [3], 'int64');
  const noise = T.zeros([3, 4, 4, 4]);
  assert.ok(Number.isFinite(T.noGrad(() => ldmLossStep(m, z, null, { t, noise }).log['train/loss'])));
});
