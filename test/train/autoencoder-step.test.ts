import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as T from '../../src/engine/index.js';
import { instantiate } from '../../src/loader/targets.js';
import { AutoencoderKL, VQModel } from '../../src/models/autoencoder/autoencoder.js';
import { LPIPSWithDiscriminator, VQLPIPSWithDiscriminator } from '../../src/models/losses/index.js';
import { autoencoderTrainStep, createAutoencoderOptimizers, discriminatorParameters, generatorParameters, type AePassInfo } from '../../src/train/autoencoder-step.js';

const ddconfig = { double_z: true, z_channels: 4, resolution: 16, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 };
const ganParams = { disc_start: 2, disc_in_channels: 3, disc_num_layers: 1, disc_weight: 0.5 };

function klModel(perceptual = 0, seed = 1): AutoencoderKL {
  return instantiate<AutoencoderKL>({
    target: 'ldm.models.autoencoder.AutoencoderKL',
    params: { embed_dim: 4, ddconfig, lossconfig: { target: 'ldm.modules.losses.LPIPSWithDiscriminator', params: { ...ganParams, kl_weight: 1e-6, perceptual_weight: perceptual, logvar_init: 0.1 } } },
  }, 'model', { gen: new T.Generator(seed) });
}

function vqModel(): VQModel {
  return instantiate<VQModel>({
    target: 'ldm.models.autoencoder.VQModel',
    params: { embed_dim: 3, n_embed: 16, ddconfig: { ...ddconfig, double_z: false, z_channels: 3 }, lossconfig: { target: 'taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator', params: { ...ganParams, perceptual_weight: 0 } } },
  }, 'model', { gen: new T.Generator(2) });
}

const batch = (seed: number) => T.keep(T.rand([2, 3, 8, 8], new T.Generator(seed), -1, 1));
const values = (t: T.Tensor) => Array.from(T.contiguousData(t) as Float32Array);

test('configure_optimizers: generator = encoder, decoder (quantize), quant convs; discriminator alone; logvar and LPIPS in neither', () => {
  const kl = klModel();
  const o = createAutoencoderOptimizers(kl, 2e-4);
  const names = new Map<T.Tensor, string>([...kl.namedParameters()].map(([k, p]) => [p, k]));
  const g = o.ae.params().map((p) => names.get(p)!), d = o.disc.params().map((p) => names.get(p)!);
  assert.ok(g.every((k) => /^(encoder|decoder|quant_conv|post_quant_conv)\./.test(k)), 'generator parameters');
  assert.equal(g.length, [...kl.namedParameters()].filter(([k]) => /^(encoder|decoder|quant_conv|post_quant_conv)\./.test(k)).length);
  assert.ok(d.length > 0 && d.every((k) => k.startsWith('loss.discriminator.')));
  assert.ok(!g.includes('loss.logvar') && !d.includes('loss.logvar'));
  assert.ok(![...g, ...d].some((k) => k.startsWith('loss.perceptual_loss.')));
  for (const opt of [o.ae, o.disc]) {
    const h = opt.groups[0].options;
    assert.deepEqual([h.lr, h.beta1, h.beta2, h.eps, h.weight_decay], [2e-4, 0.5, 0.9, 1e-8, 0]);
  }
  assert.throws(() => createAutoencoderOptimizers(kl, 2e-4, { lrGFactor: 2 }), /lr_g_factor .* is a VQModel setting/);

  const vq = vqModel();
  const ov = createAutoencoderOptimizers(vq, 1e-3, { lrGFactor: 0.5 });
  assert.equal(ov.ae.lr, 5e-4);
  assert.equal(ov.disc.lr, 1e-3);
  assert.ok(generatorParameters(vq).includes(vq.quantize.codebook as never));
  assert.deepEqual(discriminatorParameters(vq), (vq.loss as VQLPIPSWithDiscriminator).discriminator.parameters());
});

test('GAN schedule: before disc_start the discriminator loss is 0 × hinge, its weights stay, yet Adam counts the step; from disc_start it trains', () => {
  const m = klModel();
  const loss = m.loss as LPIPSWithDiscriminator;
  const o = createAutoencoderOptimizers(m, 1e-3);
  const gen = new T.Generator(3);
  const d0 = loss.discriminator.parameters().map(values);
  const logvar0 = loss.logvar.item();
  let logvarGrad: number | null = null;
  const observe = (phase: string, info: AePassInfo) => {
    if (phase === 'backward' && info.pass === 'generator') logvarGrad = loss.logvar.grad?.item() ?? null;
  };
  const r0 = autoencoderTrainStep(m, batch(1), 0, { optimizers: o, gen, observe });
  assert.equal(r0.logs['train/disc_factor'], 0);
  assert.equal(r0.logs['train/disc_loss'], 0);
  assert.ok(r0.logs['train/d_weight'] > 0, 'd_weight is computed while the GAN is off');
  assert.ok(Math.abs(r0.logs['train/total_loss'] - (r0.logs['train/nll_loss'] + 1e-6 * r0.logs['train/kl_loss'])) < 1e-3 * Math.abs(r0.logs['train/total_loss']));
  loss.discriminator.parameters().forEach((p, i) => assert.deepEqual(values(p), d0[i], 'discriminator unchanged while the GAN is off'));
  for (const p of o.disc.params()) assert.equal(o.disc.state.get(p)?.step, 1, 'Adam step count advances on zero gradients');
  assert.ok(logvarGrad !== null && logvarGrad !== 0, 'loss.logvar gets a gradient');
  assert.equal(loss.logvar.item(), logvar0, 'loss.logvar is in neither optimizer');
  assert.equal(loss.logvar.grad, null);

  autoencoderTrainStep(m, batch(2), 1, { optimizers: o, gen });
  const r2 = autoencoderTrainStep(m, batch(3), 2, { optimizers: o, gen });
  assert.equal(r2.logs['train/disc_factor'], 1);
  assert.ok(r2.logs['train/disc_loss'] > 0);
  assert.ok(Math.abs(r2.logs['train/total_loss'] - (r2.logs['train/nll_loss'] + 1e-6 * r2.logs['train/kl_loss'] + r2.logs['train/d_weight'] * r2.logs['train/g_loss'])) < 1e-3 * Math.abs(r2.logs['train/total_loss']));
  assert.notDeepEqual(values(loss.discriminator.parameters()[0]), d0[0], 'the discriminator trains once the GAN is on');
  // BatchNorm: one fake batch in the generator pass, real and fake batches in the discriminator pass.
  const bn = [...loss.discriminator.namedBuffers()].find(([k]) => k.endsWith('num_batches_tracked'))![1];
  assert.equal(Number((bn.data as BigInt64Array)[0]), 3 * 3);
});

test('the discriminator pass re-runs the forward with the updated weights and a fresh posterior sample', () => {
  const m = klModel();
  const o = createAutoencoderOptimizers(m, 1e-3);
  const recs: Record<string, number[]> = {};
  const x = batch(4);
  const noise = T.keep(T.randn([2, 4, 4, 4], new T.Generator(9)));
  autoencoderTrainStep(m, x, 0, { optimizers: o, noise: { generator: noise, discriminator: noise }, observe: (ph, info) => { if (ph === 'backward') recs[info.pass] = values(info.reconstructions); } });
  // Same noise in both passes: the reconstructions differ only through the generator's update in between.
  const again = T.noGrad(() => values(m.forward(x, true, noise).dec));
  assert.notDeepEqual(recs.generator, recs.discriminator);
  assert.deepEqual(recs.discriminator, again);
});

test('LPIPS dropout is active in training: masks are drawn from the generator or replayed', () => {
  const x = T.keep(T.rand([2, 3, 16, 16], new T.Generator(6), -1, 1));
  const zeros = T.keep(T.zeros([2, 4, 8, 8]));
  // One model, reset to the same weights before every run: the generator pass's p_loss under different dropout draws.
  const m = klModel(1.0, 5);
  const initial = new Map([...m.stateDict()].map(([k, t]) => [k, T.keep(T.Tensor.fromData(T.contiguousData(t).slice(), [...t.shape]))]));
  const pl = (opts: { gen?: T.Generator; lpipsKeep?: T.Tensor[] }) => {
    let p: number[] = [];
    m.loadStateDict(initial);
    autoencoderTrainStep(m, x, 0, { optimizers: createAutoencoderOptimizers(m, 1e-3), noise: { generator: zeros, discriminator: zeros }, ...opts, observe: (ph, info) => { if (ph === 'backward' && info.pass === 'generator') p = values(info.pLoss!); } });
    return p;
  };
  const a = pl({ gen: new T.Generator(1) }), b = pl({ gen: new T.Generator(2) }), a2 = pl({ gen: new T.Generator(1) });
  assert.deepEqual(a, a2, 'same generator, same masks');
  assert.notDeepEqual(a, b, 'dropout is on (different draws give different distances)');
  // All-kept masks double every lin input: twice the eval-mode distance.
  const lp = (m.loss as LPIPSWithDiscriminator).perceptual_loss;
  const ones = T.noGrad(() => lp.net.forward(lp.scaling_layer.forward(x)).map((f) => T.keep(T.ones([...f.shape], 'int32'))));
  const kept = pl({ lpipsKeep: ones });
  m.loadStateDict(initial);
  const xrec = T.noGrad(() => m.forward(x, true, zeros).dec);
  lp.eval();
  const evalDist = T.noGrad(() => values(lp.forward(x, xrec)));
  kept.forEach((v, i) => assert.ok(Math.abs(v - 2 * evalDist[i]) <= 1e-5 * Math.abs(v), `${v} vs 2 × ${evalDist[i]}`));
  assert.throws(() => pl({ lpipsKeep: ones.slice(0, 4) }), /4 dropout keep masks given, expected 5/);
});

test('VQ: nll is the mean, codebook loss added; the step trains and logs quant_loss', () => {
  const m = vqModel();
  const o = createAutoencoderOptimizers(m, 1e-3);
  const r = autoencoderTrainStep(m, batch(7), 0, { optimizers: o });
  const l = r.logs;
  assert.ok(Math.abs(l['train/total_loss'] - (l['train/nll_loss'] + l['train/quant_loss'])) < 1e-5 * l['train/total_loss']);
  assert.equal(l['train/nll_loss'], l['train/rec_loss']);
  assert.equal(l['train/p_loss'], 0);
  assert.ok(l['train/nll_loss'] < 2 && l['train/nll_loss'] > 0.05, `mean-reduced nll ${l['train/nll_loss']}`);
  assert.throws(() => autoencoderTrainStep(m, T.zeros([2, 3, 7, 8]), 0, { optimizers: o }), /H and W multiples of 2, got \[2,3,7,8\]/);
});

test('memory: 50 training steps of a small autoencoder stay flat (no tensor left in scope, pool stops allocating, typed arrays flat)', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const m = klModel();
  const o = createAutoencoderOptimizers(m, 1e-4);
  const gen = new T.Generator(11);
  const x = batch(8);
  const measure = () => {
    gc();
    return { arrays: process.memoryUsage().arrayBuffers, allocated: T.poolStats().allocated };
  };
  T.tidy(() => {
    const tracked = T.trackedCount();
    for (let i = 0; i < 10; i++) autoencoderTrainStep(m, x, i, { optimizers: o, gen });
    const a = measure();
    for (let i = 10; i < 50; i++) {
      autoencoderTrainStep(m, x, i, { optimizers: o, gen });
      assert.equal(T.trackedCount(), tracked, `step ${i} left tensors in the caller's scope`);
    }
    const b = measure();
    assert.ok(b.arrays - a.arrays < 1 << 20, `typed arrays grew by ${((b.arrays - a.arrays) / 1024).toFixed(0)} KiB over 40 steps`);
    assert.ok(b.allocated - a.allocated <= 40, `the buffer pool allocated ${b.allocated - a.allocated} new buffers after warm-up`);
  });
});
