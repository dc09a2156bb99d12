import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { loadCheckpointInto } from '../../src/loader/checkpoint.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { instantiate } from '../../src/loader/targets.js';
import {
  ActNorm, LPIPS, LPIPSWithDiscriminator, loadLpipsWeights, MaxPool2x2, NLayerDiscriminator, VQLPIPSWithDiscriminator, gradWrt, hingeDLoss, normalizeTensor, softplus, vanillaDLoss,
} from '../../src/models/losses/index.js';
import { DiagonalGaussianDistribution } from '../../src/models/autoencoder/index.js';
import { Parameter } from '../../src/nn/index.js';
import { assertClose } from '../helpers/gradcheck.js';

function shapes(m: { stateDict(): Map<string, T.Tensor> }): Record<string, string> {
  return Object.fromEntries([...m.stateDict()].map(([k, v]) => [k, v.shape.join('x')]));
}

test('NLayerDiscriminator: taming layout (keys, bias only without BatchNorm), weights_init, patch logits', () => {
  const d = instantiate<NLayerDiscriminator>({ target: 'taming.modules.discriminator.model.NLayerDiscriminator', params: {} }, 'd', { gen: new T.Generator(5) });
  const s = shapes(d);
  assert.equal(s['main.0.weight'], '64x3x4x4');
  assert.equal(s['main.0.bias'], '64');
  assert.equal(s['main.2.weight'], '128x64x4x4');
  assert.equal(s['main.2.bias'], undefined);
  assert.equal(s['main.3.running_var'], '128');
  assert.equal(s['main.8.weight'], '512x256x4x4');
  assert.equal(s['main.9.num_batches_tracked'], '');
  assert.equal(s['main.11.weight'], '1x512x4x4');
  assert.equal(s['main.11.bias'], '1');
  assert.equal(Object.keys(s).length, 22); // 2 + 1 + 5 + 1 + 5 + 1 + 5 + 2
  const w = (d.main[5] as unknown as { weight: T.Tensor }).weight.toArray();
  const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
  assert.ok(Math.abs(std - 0.02) < 0.001, `conv init std ${std}`);
  const bnw = (d.main[3] as unknown as { weight: T.Tensor }).weight.toArray();
  assert.ok(Math.abs(bnw.reduce((a, v) => a + v, 0) / bnw.length - 1) < 0.01);
  const out = T.noGrad(() => d.eval().forward(T.randn([1, 3, 64, 64])));
  assert.deepEqual(out.shape, [1, 1, 6, 6]); // 64 → 32 → 16 → 8 → 7 → 6
  // ActNorm variant keeps conv biases and initialises from the first training batch.
  const da = new NLayerDiscriminator({ ndf: 8, nLayers: 2, useActnorm: true });
  assert.ok('main.2.bias' in shapes(da) && 'main.3.loc' in shapes(da) && 'main.3.initialized' in shapes(da));
});

test('ActNorm: data-dependent init gives zero mean, unit std per channel on the first training batch', () => {
  const a = new ActNorm(3);
  const x = T.add(T.mul(T.randn([4, 3, 5, 5], new T.Generator(2)), 3), 7);
  const y = T.noGrad(() => a.forward(x));
  assert.equal(a.initialized.item(), 1);
  const m = T.mean(y, [0, 2, 3]).toArray(), v = T.variance(y, [0, 2, 3], false, true).toArray();
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(m[c]) < 1e-5);
    assert.ok(Math.abs(Math.sqrt(v[c]) - 1) < 1e-5);
  }
  const loc = a.loc.toArray();
  T.noGrad(() => a.forward(T.randn([4, 3, 5, 5])));
  assert.deepEqual(a.loc.toArray(), loc, 'initialised once');
});

test('MaxPool2x2 and normalizeTensor match direct loops (odd sizes drop the last row/column)', () => {
  const x = T.randn([2, 3, 5, 7], new T.Generator(4));
  const y = new MaxPool2x2().forward(x);
  assert.deepEqual(y.shape, [2, 3, 2, 3]);
  const xa = x.toArray(), ya = y.toArray();
  let k = 0;
  for (let n = 0; n < 6; n++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
    const at = (a: number, b: number) => xa[n * 35 + a * 7 + b];
    assert.equal(ya[k++], Math.max(at(2 * i, 2 * j), at(2 * i, 2 * j + 1), at(2 * i + 1, 2 * j), at(2 * i + 1, 2 * j + 1)));
  }
  const nt = normalizeTensor(x).toArray();
  const norm = Math.hypot(xa[0], xa[35], xa[70]);
  assert.ok(Math.abs(nt[0] - xa[0] / (norm + 1e-10)) < 1e-6);
});

test('LPIPS: torchvision VGG16 key layout, zero distance to itself, symmetric, loads user weights', (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ldm-lpips-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const lp = instantiate<LPIPS>({ target: 'taming.modules.losses.lpips.LPIPS', params: { use_dropout: true } }, 'lpips', { gen: new T.Generator(1) });
  const s = shapes(lp);
  for (const [k, v] of Object.entries({
    'scaling_layer.shift': '1x3x1x1', 'net.slice1.0.weight': '64x3x3x3', 'net.slice1.2.weight': '64x64x3x3', 'net.slice2.5.weight': '128x64x3x3',
    'net.slice3.14.weight': '256x256x3x3', 'net.slice4.17.weight': '512x256x3x3', 'net.slice5.28.weight': '512x512x3x3',
    'lin0.model.1.weight': '1x64x1x1', 'lin4.model.1.weight': '1x512x1x1',
  })) assert.equal(s[k], v, k);
  assert.equal(Object.keys(s).length, 2 + 26 + 5);
  assert.deepEqual(lp.scaling_layer.shift.toArray().map((v) => +v.toFixed(3)), [-0.03, -0.088, -0.188]);
  assert.deepEqual(lp.scaling_layer.scale.toArray().map((v) => +v.toFixed(3)), [0.458, 0.448, 0.45]);
  // Positive heads (as trained LPIPS weights are) make the distance a sum of non-negative terms.
  for (const l of [lp.lin0, lp.lin1, lp.lin2, lp.lin3, lp.lin4]) {
    const w = (l.model[1] as unknown as { weight: T.Tensor }).weight;
    T.copyInto(w, T.abs(w));
  }
  const g = new T.Generator(9);
  const x = T.clamp(T.randn([2, 3, 32, 32], g), -1, 1), y = T.clamp(T.randn([2, 3, 32, 32], g), -1, 1);
  T.noGrad(() => {
    const same = lp.forward(x, x);
    assert.deepEqual(same.shape, [2, 1, 1, 1]);
    assert.deepEqual(same.toArray(), [0, 0]);
    const dxy = lp.forward(x, y).toArray(), dyx = lp.forward(y, x).toArray();
    assert.ok(dxy[0] > 0 && dxy[1] > 0);
    assertClose(dxy, dyx, 1e-6, 'symmetry');
    // Weights supplied by the user (here: saved from this network) load by name and reproduce the value.
    const file = path.join(tmp, 'lpips.safetensors');
    writeSafetensors(file, lp.stateDict());
    const other = new LPIPS(true, { gen: new T.Generator(77) });
    const r = loadCheckpointInto(other, file);
    assert.deepEqual(r.missing, []);
    assertClose(other.forward(x, y).toArray(), dxy, 1e-6, 'reloaded LPIPS');
  });
  assert.ok(lp.parameters().every((p) => !p.requiresGrad), 'LPIPS is frozen');
  // torchvision's VGG16 file (features.{i}.*) plus the LPIPS heads file map onto the slices.
  const vggFile = path.join(tmp, 'vgg16.safetensors'), linFile = path.join(tmp, 'vgg_lpips.safetensors');
  const vgg = new Map<string, T.Tensor>([['classifier.0.weight', T.zeros([2, 2])]]);
  const lin = new Map<string, T.Tensor>();
  for (const [k, v] of lp.stateDict()) {
    const m = /^net\.slice\d\.(\d+)\.(weight|bias)$/.exec(k);
    if (m) vgg.set(`features.${m[1]}.${m[2]}`, v);
    else if (k.startsWith('lin')) lin.set(k, v);
  }
  writeSafetensors(vggFile, vgg);
  writeSafetensors(linFile, lin);
  const fresh = new LPIPS(true, { gen: new T.Generator(78) });
  loadLpipsWeights(fresh, { vgg16: vggFile, lin: linFile });
  for (const [k, v] of lp.stateDict()) assert.deepEqual(fresh.stateDict().get(k)!.toArray(), v.toArray(), k);
  assert.throws(() => loadLpipsWeights(new LPIPS(true, { meta: true }), { lin: linFile }), /LPIPS weights incomplete: 26 missing \(net\.slice1\.0\.weight/);
});

test('GAN losses: generator step (adaptive weight from gradients at the last layer) and discriminator step', () => {
  T.manualSeed(11);
  const loss = instantiate<LPIPSWithDiscriminator>({
    target: 'ldm.modules.losses.LPIPSWithDiscriminator',
    params: { disc_start: 5, kl_weight: 1e-6, disc_weight: 0.5, disc_num_layers: 2 },
  }, 'model.params.lossconfig');
  assert.ok(loss.logvar instanceof Parameter && loss.logvar.shape.length === 0);
  const last = T.requireGrad(T.randn([3, 4, 1, 1]));
  const h = T.randn([1, 4, 16, 16]);
  const recon = T.conv2d(h, last, null); // x̂ depends on the "last layer"
  const x = T.randn([1, 3, 16, 16]);
  const post = new DiagonalGaussianDistribution(T.randn([1, 4, 2, 2]));
  const other = new Parameter(T.ones([2]));
  other.grad = T.full([2], 7);
  const r0 = loss.forward(x, recon, post, 0, 10, { lastLayer: last });
  // d_weight = clamp(‖∇nll‖ / (‖∇g‖ + 1e-4), 0, 1e4) · disc_weight, with nll = Σ(|x − x̂| + LPIPS)/e^logvar + logvar over B.
  const rec = T.add(T.abs(T.sub(x, recon)), loss.perceptual_loss.forward(x, recon));
  const nll = T.sum(T.add(T.div(rec, T.exp(loss.logvar)), loss.logvar));
  const g = T.neg(T.mean(loss.discriminator.forward(recon)));
  const gn = gradWrt(nll, last)!, gg = gradWrt(g, last)!;
  const norm = (t: T.Tensor) => Math.sqrt(t.toArray().reduce((a, v) => a + v * v, 0));
  const dw = (norm(gn) / (norm(gg) + 1e-4)) * 0.5;
  assert.ok(Math.abs(r0.log['train/d_weight'] - dw) / dw < 1e-4);
  const kl = T.sum(post.kl()).item();
  const expect = nll.item() + 1e-6 * kl + dw * 1 * g.item();
  assert.ok(Math.abs(r0.loss.item() - expect) / Math.abs(expect) < 1e-5, `${r0.loss.item()} vs ${expect}`);
  assert.equal(last.grad, null, 'gradWrt leaves .grad as it was');
  assert.deepEqual(other.grad.toArray(), [7, 7]);
  // Before disc_start the GAN term is off.
  const early = loss.forward(x, recon, post, 0, 4, { lastLayer: last });
  assert.equal(early.log['train/disc_factor'], 0);
  // Discriminator step: hinge loss on detached inputs.
  const r1 = loss.forward(x, recon, post, 1, 10);
  const real = loss.discriminator.forward(x), fake = loss.discriminator.forward(recon);
  assert.ok(Math.abs(r1.loss.item() - hingeDLoss(real, fake).item()) < 1e-6);
  const hinge = 0.5 * (real.toArray().reduce((a, v) => a + Math.max(0, 1 - v), 0) / real.size + fake.toArray().reduce((a, v) => a + Math.max(0, 1 + v), 0) / fake.size);
  assert.ok(Math.abs(hingeDLoss(real, fake).item() - hinge) < 1e-6);
  const sp = softplus(T.tensor([-30, 0, 1, 30])).toArray();
  assertClose(sp, [Math.log1p(Math.exp(-30)), Math.log(2), Math.log1p(Math.E), 30], 1e-6, 'softplus');
  assert.ok(vanillaDLoss(real, fake).item() > 0);
});

test('GAN losses: with the discriminator frozen, one backward through it gives the same loss, d_weight and gradients', () => {
  for (const kind of ['kl', 'vq'] as const) {
    T.manualSeed(13);
    const params = { disc_start: 0, disc_weight: 0.5, disc_num_layers: 2, perceptual_weight: 0 };
    const loss = kind === 'kl'
      ? instantiate<LPIPSWithDiscriminator>({ target: 'ldm.modules.losses.LPIPSWithDiscriminator', params }, 'l')
      : instantiate<VQLPIPSWithDiscriminator>({ target: 'taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator', params }, 'l');
    const last = T.requireGrad(T.randn([3, 4, 3, 3]));
    const first = T.requireGrad(T.randn([4, 4, 1, 1]));
    const h = T.randn([2, 4, 16, 16]), x = T.randn([2, 3, 16, 16]);
    const post = new DiagonalGaussianDistribution(T.randn([2, 4, 2, 2]));
    const run = (frozen: boolean) => T.tidy(() => {
      for (const p of loss.discriminator.parameters()) {
        p.requiresGrad = !frozen;
        p.grad = null;
      }
      first.grad = last.grad = null;
      const recon = T.conv2d(T.conv2d(h, first, null), last, null, { padding: 1 });
      const r = loss instanceof LPIPSWithDiscriminator ? loss.forward(x, recon, post, 0, 1, { lastLayer: last }) : loss.forward(null, x, recon, 0, 1, { lastLayer: last });
      r.loss.backward();
      const discGrad = loss.discriminator.parameters().some((p) => p.grad !== null);
      return { value: r.loss.item(), dWeight: r.log['train/d_weight'], gFirst: first.grad!.toArray(), gLast: last.grad!.toArray(), discGrad };
    });
    const ref = run(false), fast = run(true);
    assert.ok(ref.discGrad && !fast.discGrad, `${kind}: only the unfrozen discriminator gets gradients`);
    assert.equal(fast.value, ref.value, `${kind}: the loss value is the same float`);
    assert.equal(fast.dWeight, ref.dWeight, `${kind}: d_weight`);
    assert.ok(ref.dWeight > 0.01);
    assertClose(fast.gLast, ref.gLast, 1e-5, `${kind}: last-layer gradient`);
    assertClose(fast.gFirst, ref.gFirst, 1e-5, `${kind}: gradient below the last layer`);
    for (const p of loss.discriminator.parameters()) p.requiresGrad = true;
  }
});

test('VQ GAN loss: codebook term, l1/l2 pixel loss, eval mode without a graph gives d_weight 0', () => {
  T.manualSeed(12);
  const loss = instantiate<VQLPIPSWithDiscriminator>({
    target: 'taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator',
    params: { disc_conditional: false, disc_in_channels: 3, disc_num_layers: 2, disc_start: 0, disc_weight: 0.6, codebook_weight: 1.0, disc_ndf: 16 },
  }, 'model.params.lossconfig');
  assert.equal(shapes(loss)['discriminator.main.0.weight'], '16x3x4x4');
  loss.eval();
  const x = T.randn([1, 3, 16, 16]), recon = T.randn([1, 3, 16, 16]);
  const r = T.noGrad(() => loss.forward(T.full([1], 0.25), x, recon, 0, 0, { lastLayer: T.zeros([1]) }));
  assert.equal(r.log['train/d_weight'], 0);
  const p = T.noGrad(() => loss.perceptual_loss.forward(x, recon));
  const expect = T.mean(T.add(T.abs(T.sub(x, recon)), p)).item() + 0.25;
  assert.ok(Math.abs(r.loss.item() - expect) < 1e-5);
  assert.throws(() => instantiate({ target: 'ldm.modules.losses.vqperceptual.VQLPIPSWithDiscriminator', params: { disc_start: 0, pixel_loss: 'l3' } }, 'l'), /l\.params\.pixel_loss: expected one of l1, l2/);
});
