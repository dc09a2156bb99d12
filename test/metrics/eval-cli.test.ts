// `ldm eval` end to end on tiny inputs: an autoencoder folder on a folder of digits, and PNG samples (classes in
// their parameters chunk) against real digits with a quickly trained classifier.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { writePng, tensorToImages } from '../../src/io/image.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { buildFromConfigFile } from '../../src/loader/targets.js';
import type { AutoencoderKL } from '../../src/models/autoencoder/index.js';
import { evalCommand } from '../../src/cli/eval.js';
import { trainClassifierCommand } from '../../src/cli/train-classifier.js';
import { mnistSplit } from '../../src/metrics/mnist.js';
import { loadClassifier } from '../../src/metrics/mnist-classifier.js';
import { classAccuracy, evaluateReconstruction, reconstruct } from '../../src/metrics/eval.js';
import { loadImageFolder } from '../../src/metrics/images.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import YAML from 'yaml';
import { tinyConfig } from '../tasks/helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-eval-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const { heldOut } = mnistSplit();

/** Digits i ∈ idx of the held-out split as 1-channel PNGs; `meta` chooses how the class is recorded. */
function writeDigits(dir: string, idx: number[], meta: 'parameters' | 'folder' | 'none'): number[] {
  mkdirSync(dir, { recursive: true });
  const labels: number[] = [];
  const classes = idx.map((i) => heldOut.get(i).class_label!);
  idx.forEach((i, k) => {
    const ex = heldOut.get(i);
    labels.push(ex.class_label!);
    const [im] = tensorToImages(T.tensor(ex.image, [1, 1, 32, 32]));
    const sub = meta === 'folder' ? path.join(dir, String(ex.class_label)) : dir;
    mkdirSync(sub, { recursive: true });
    writePng(path.join(sub, `sample-${String(k).padStart(4, '0')}.png`), im, meta === 'parameters' ? { parameters: JSON.stringify({ task: 'class', classes, index: k }) } : {});
  });
  return labels;
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log, err = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  console.error = () => {};
  try {
    const code = await evalCommand(args);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

test('--autoencoder on a folder: PSNR / SSIM lines and JSON equal to the library call', async () => {
  const dir = path.join(tmp, 'ae');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.yaml'), `model:
  target: ldm.models.autoencoder.AutoencoderKL
  params:
    embed_dim: 2
    lossconfig: { target: torch.nn.Identity }
    ddconfig: { double_z: true, z_channels: 2, resolution: 32, in_channels: 1, out_ch: 1, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 }
`);
  T.manualSeed(3);
  const ae = buildFromConfigFile<AutoencoderKL>(path.join(dir, 'config.yaml')).eval();
  writeSafetensors(path.join(dir, 'model.safetensors'), ae.stateDict());
  const images = path.join(tmp, 'ae-images');
  writeDigits(images, [0, 1, 2, 3, 4, 5], 'none');
  const json = path.join(tmp, 'ae.json');
  const r = await run(['--autoencoder', dir, '--data', images, '--channels', '1', '--batch', '4', '--json', json]);
  assert.equal(r.code, 0);
  assert.match(r.out, /^psnr -?\d+\.\d+ dB\nssim -?\d\.\d{4}\nimages 6$/);
  const rep = JSON.parse(readFileSync(json, 'utf8'));
  // The CLI's batches (4 + 2): a convolution's algorithm depends on its batch (Winograd from 64 tiles), so other
  // batches would round differently.
  const direct = T.noGrad(() => evaluateReconstruction((x) => reconstruct(ae, x), loadImageFolder(images, 1), { batchSize: 4 }));
  assert.equal(rep.n, 6);
  assert.ok(Math.abs(rep.psnr - direct.psnr) < 1e-9 && Math.abs(rep.ssim - direct.ssim) < 1e-9, `${rep.psnr} ${direct.psnr}`);
  assert.ok(rep.ssim < 0.9, 'an untrained autoencoder does not reproduce digits');
  assert.equal(rep.lpips, undefined);
  await assert.rejects(() => run(['--autoencoder', path.join(tmp, 'nope')]), /does not exist/);
  await assert.rejects(() => run(['--autoencoder', dir, '--samples', images]), /either --autoencoder or --samples/);
});

test('--samples folder vs --real folder: FID / precision / recall / class accuracy, and --features inception without weights', async () => {
  const cls = path.join(tmp, 'classifier');
  const log = console.log, err = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    assert.equal(trainClassifierCommand(['--out', cls, '--limit', '300', '--epochs', '2', '--batch', '16']), 0);
  } finally {
    console.log = log;
    console.error = err;
  }
  const real = path.join(tmp, 'real'), fake = path.join(tmp, 'fake'), byFolder = path.join(tmp, 'by-folder');
  writeDigits(real, Array.from({ length: 40 }, (_, i) => 25 * i), 'none');
  const fakeIdx = Array.from({ length: 40 }, (_, i) => 25 * i + 7); // every digit (the split keeps them in digit order)
  writeDigits(fake, fakeIdx, 'parameters');
  writeDigits(byFolder, fakeIdx, 'folder');
  const json = path.join(tmp, 'gen.json');
  const r = await run(['--samples', fake, '--real', real, '--classifier', cls, '--channels', '1', '--json', json]);
  assert.equal(r.code, 0);
  assert.match(r.out, /^fid \d+\.\d{3} \(mnist-classifier, 40 samples vs 40 real\)\nprecision [01]\.\d{4}\nrecall [01]\.\d{4} \(k = 3\)\nclass_accuracy \d+\.\d\d % \(40 labelled samples\)$/);
  const rep = JSON.parse(readFileSync(json, 'utf8'));
  // The class accuracy is the classifier's accuracy on these digits, labelled from the parameters chunk.
  const net = loadClassifier(cls)!.net;
  const set = loadImageFolder(fake, 1);
  assert.deepEqual(set.labels, fakeIdx.map((i) => heldOut.get(i).class_label));
  assert.equal(rep.class_accuracy, classAccuracy(net, set).class_accuracy);
  assert.ok(rep.fid > 0 && rep.precision > 0.5 && rep.recall > 0.5, JSON.stringify(rep));
  // Labels from folder names give the same report; a set against itself: FID 0, precision = recall = 1.
  const r2 = JSON.parse((await run(['--samples', byFolder, '--real', real, '--classifier', cls, '--channels', '1'])).out.split('\n').slice(4).join('\n'));
  assert.equal(r2.fid, rep.fid);
  assert.equal(r2.class_accuracy, rep.class_accuracy);
  const self = JSON.parse((await run(['--samples', real, '--real', real, '--classifier', cls, '--channels', '1'])).out.split('\n').slice(3).join('\n'));
  assert.ok(self.fid < 1e-6 && self.precision === 1 && self.recall === 1, JSON.stringify(self));
  // --real mnist with --floor (limited to 40 held-out digits).
  const fl = JSON.parse((await run(['--samples', fake, '--real', 'mnist', '--limit', '40', '--floor', '--classifier', cls, '--channels', '1'])).out.split('\n').slice(7).join('\n'));
  assert.equal(fl.n_real, 40);
  assert.ok(fl.floor.fid > 0 && fl.floor.n_train === 40 && fl.floor.n_held_out === 40, JSON.stringify(fl.floor));
  // --floor alone: only the real-vs-real figures.
  const only = await run(['--floor', '--limit', '40', '--classifier', cls]);
  assert.match(only.out, /^floor_fid \d+\.\d{3} \(40 training digits vs 40 held-out\)\nfloor_precision [01]\.\d{4}\nfloor_recall [01]\.\d{4}\n\{/);
  const onlyRep = JSON.parse(only.out.split('\n').slice(3).join('\n'));
  assert.equal(onlyRep.samples, null);
  assert.equal(onlyRep.floor.fid, fl.floor.fid);
  await assert.rejects(() => run(['--samples', fake, '--features', 'inception']), /pt_inception-2015-12-05-6726825d\.pth.*--inception-weights/s);
  await assert.rejects(() => run(['--samples', fake, '--features', 'clip']), /mnist or inception/);
});

test('--samples MODEL: samples n per class with DDIM, labels them, saves them', async () => {
  // The tiny cin256-v2-like model at 32×32 (latent 8×8).
  const cfg = tinyConfig('class');
  const params = (cfg as unknown as { params: Record<string, unknown> & { unet_config: { params: Record<string, unknown> } } }).params;
  params.image_size = 8;
  params.unet_config.params.image_size = 8;
  const dir = path.join(tmp, 'ldm');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.yaml'), YAML.stringify({ model: cfg }));
  const model = instantiate<LatentDiffusion>(cfg, 'model', { gen: new T.Generator(4) });
  writeSafetensors(path.join(dir, 'model.safetensors'), model.stateDict());
  const real = path.join(tmp, 'real'), out = path.join(tmp, 'sampled');
  const r = await run(['--samples', dir, '--classes', '3,5', '--n-per-class', '2', '--steps', '2', '--real', real, '--classifier', path.join(tmp, 'classifier'), '--channels', '1', '--save-samples', out]);
  assert.equal(r.code, 0);
  const rep = JSON.parse(r.out.split('\n').slice(4).join('\n'));
  assert.equal(rep.n_fake, 4);
  assert.equal(rep.class_accuracy_n, 4);
  assert.deepEqual(Object.keys(rep.per_class).sort(), ['3', '5']);
  const saved = loadImageFolder(out, 1);
  assert.deepEqual(saved.labels, [3, 3, 5, 5]);
  assert.equal(saved.images.length, 4);
  assert.ok(Number.isFinite(rep.fid));
});

test('--help lists the options with their defaults', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /--features mnist\|inception .*\(default: mnist\)/);
  assert.match(r.out, /--k N .*\(default: 3\)/);
  assert.match(r.out, /--n-per-class N .*\(default: 100\)/);
});
