// Every task end to end on tiny random-weight models with the official configs' structure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import * as tasks from '../../src/tasks/index.js';
import type { Image } from '../../src/io/image.js';
import { pixelStats, tinyModel, tinyVocab } from './helpers.js';

const img = (w: number, h: number, f: (x: number, y: number, c: number) => number): Image => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { width: w, height: h, channels: 3, data };
};
const S = { steps: 4, seed: 1 };

function checkOutput(r: tasks.TaskResult, shape: number[]): void {
  assert.deepEqual(r.decoded.shape, shape);
  assert.equal(r.images.length, shape[0]);
  const d = r.decoded.toArray();
  assert.ok(d.every(Number.isFinite), 'decoded values are finite');
  // images = trunc(255·clamp((x+1)/2)) of the decoded tensor (red channel, first image)
  const [, , H, W] = shape;
  for (const i of [0, 7, H * W - 1]) {
    const u = Math.min(Math.max(Math.fround(Math.fround(d[i] + 1) / 2), 0), 1);
    assert.equal(r.images[0].data[i * 3], Math.trunc(Math.fround(255 * u)));
  }
  assert.equal(r.images[0].width, W);
  assert.ok(pixelStats(r.images[0].data).distinct > 10, 'a non-constant picture');
}

test('unconditional: any multiple of f × UNet factor, seeded, clear size errors', () => {
  const m = tinyModel('unconditional');
  const a = tasks.sampleUnconditional(m, { ...S, n: 2, H: 32, W: 64, eta: 0 });
  checkOutput(a, [2, 3, 32, 64]);
  assert.deepEqual(a.samples.shape, [2, 3, 8, 16]);
  const b = tasks.sampleUnconditional(m, { ...S, n: 2, H: 32, W: 64, eta: 0 });
  assert.deepEqual(b.samples.toArray(), a.samples.toArray(), 'same seed, same samples');
  const c = tasks.sampleUnconditional(m, { ...S, n: 2, H: 32, W: 64, seed: 2, eta: 0 });
  assert.notDeepEqual(c.samples.toArray(), a.samples.toArray());
  // a given x_T is used as is (eta 0: no per-step noise)
  const d = tasks.sampleUnconditional(m, { ...S, xT: a.start, eta: 0 });
  assert.deepEqual(d.samples.toArray(), a.samples.toArray());
  // scripts/sample_diffusion.py samples with DDIM eta 1.0 unless told otherwise
  const noEta = { ...S };
  delete (noEta as { eta?: number }).eta;
  const e1 = tasks.sampleUnconditional(m, { ...noEta, xT: a.start });
  assert.equal(e1.params.eta, 1);
  assert.deepEqual(e1.samples.toArray(), tasks.sampleUnconditional(m, { ...noEta, xT: a.start, eta: 1 }).samples.toArray());
  assert.notDeepEqual(e1.samples.toArray(), tasks.sampleUnconditional(m, { ...noEta, xT: a.start, eta: 0 }).samples.toArray());
  assert.throws(() => tasks.sampleUnconditional(m, { ...S, H: 30, W: 32 }), /height 30 is not divisible by the first stage's downsampling factor f = 4/);
  assert.throws(() => tasks.sampleUnconditional(m, { ...S, H: 36, W: 32 }), /height 36 must be a multiple of 32 \(f = 4 × the UNet's 8× downsampling\)/);
  assert.throws(() => tasks.sampleClassConditional(m, { ...S, classes: [1] }), /this is an unconditional model, not a class-conditional model/);
});

test('unconditional KL model with scale_by_std: the checkpoint buffer scales the latents', () => {
  const m = tinyModel('churches');
  assert.ok(m.stateDict().has('scale_factor'));
  (m.scale_factor!.data as Float32Array)[0] = 2;
  assert.equal(m.scaleFactor, 2);
  const z = T.randn([1, 4, 8, 8], new T.Generator(3));
  const viaModel = T.noGrad(() => m.decodeFirstStage(z)).toArray();
  const direct = T.noGrad(() => (m.first_stage_model.decode as (z: T.Tensor) => T.Tensor)(T.mul(z, 0.5))).toArray();
  assert.deepEqual(viaModel, direct);
  checkOutput(tasks.sampleUnconditional(m, { ...S, H: 32, W: 32, sampler: 'dpm++' }), [1, 3, 32, 32]);
});

test('class-conditional with guidance: class 1000 is the unconditional label of a 1001-class model', () => {
  const m = tinyModel('class');
  const r = tasks.sampleClassConditional(m, { ...S, classes: [3, 7], scale: 3, H: 32, W: 32 });
  checkOutput(r, [2, 3, 32, 32]);
  assert.equal(r.params.uncond_class, 1000);
  const { cond, uncond } = T.noGrad(() => tasks.classConditioning(m, [3, 7], 3));
  assert.deepEqual((cond as T.Tensor).shape, [2, 1, 32]);
  const u = T.noGrad(() => m.getLearnedConditioning(T.tensor([1000, 1000], [2], 'int64')));
  assert.deepEqual((uncond as T.Tensor).toArray(), u.toArray());
  assert.throws(() => tasks.sampleClassConditional(m, { ...S, classes: [1001] }), /class 1001 is outside this model's classes 0…1000/);
  assert.throws(() => tasks.sampleTextToImage(m, { ...S, prompts: ['a fox'] }), /this is a class-conditional model, not a text-to-image model/);
});

test('text-to-image: BERT prompt, "" as the unconditional prompt, vocab required', () => {
  const m = tinyModel('text');
  assert.throws(() => tasks.sampleTextToImage(m, { ...S, prompts: ['a fox'], scale: 5 }), (e: unknown) => e instanceof tasks.TaskInputError && e.input === 'vocab' && /vocab\.txt/.test(e.message));
  const r = tasks.sampleTextToImage(m, { ...S, prompts: ['a painting of a fox', 'a red cat'], scale: 5, vocabFile: tinyVocab(), H: 64, W: 128, sampler: 'plms' });
  checkOutput(r, [2, 3, 64, 128]);
  assert.deepEqual(r.samples.shape, [2, 4, 8, 16]);
  const { uncond } = T.noGrad(() => tasks.textConditioning(m, ['a fox'], 5));
  assert.deepEqual((uncond as T.Tensor).toArray(), T.noGrad(() => m.getLearnedConditioning([''])).toArray());
  assert.equal(r.params.scale, 5);
});

test('inpainting: 7-channel concat conditioning, known pixels unchanged', () => {
  const m = tinyModel('inpainting');
  const image = img(32, 32, (x, y, c) => (x * 7 + y * 3 + c * 50) % 256);
  const inHole = (x: number, y: number) => x >= 8 && x < 24 && y >= 8 && y < 24;
  const mask = img(32, 32, (x, y) => (inHole(x, y) ? 255 : 0));
  const r = tasks.sampleInpainting(m, { ...S, image, mask, n: 2 });
  assert.deepEqual(r.decoded.shape, [2, 3, 32, 32]);
  for (const out of r.images) {
    let changed = 0;
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) {
          const i = (y * 32 + x) * 3 + c;
          if (!inHole(x, y)) assert.equal(out.data[i], image.data[i], `known pixel (${x}, ${y}) changed`);
          else if (out.data[i] !== image.data[i]) changed++;
        }
      }
    }
    assert.ok(changed > 300, `the hole was filled (${changed} values changed)`);
  }
  assert.throws(() => tasks.sampleInpainting(m, { ...S, image, mask: img(16, 16, () => 0) }), /mask is 16×16 but the image is 32×32/);
});

test('super-resolution: ×f output; tiling with one window equals the untiled model, overlapping tiles blend', () => {
  const m = tinyModel('superres');
  const lowRes = img(24, 24, (x, y, c) => (x * 5 + y * 2 + c * 30) % 256);
  const plain = tasks.sampleSuperResolution(m, { ...S, lowRes, tiled: false });
  checkOutput(plain, [1, 3, 96, 96]);
  assert.equal(plain.params.eta, 1, 'DDIM eta 1 by default (notebook)');
  const oneTile = tasks.sampleSuperResolution(m, { ...S, lowRes, tiled: true, window: 24, stride: 24 });
  const a = plain.samples.toArray(), b = oneTile.samples.toArray();
  assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-4 * (1 + Math.abs(v))), 'a single window reproduces the untiled result');
  const tiles = tasks.sampleSuperResolution(m, { ...S, lowRes, tiled: true, window: 16, stride: 8 });
  checkOutput(tiles, [1, 3, 96, 96]);
  assert.ok(!('splitInputParams' in m), 'tiling is a sampling option, not model state');
});

test('semantic synthesis: one-hot label map through SpatialRescaler, concat', () => {
  const m = tinyModel('semantic');
  const seg = img(32, 32, (x) => (x < 16 ? 3 : 150));
  const r = tasks.sampleSemantic(m, { ...S, segmentation: seg });
  checkOutput(r, [1, 3, 32, 32]);
  const oh = tasks.oneHot([0, 2, 255, 1], 2, 2, 3).toArray();
  assert.deepEqual(oh, [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
  assert.throws(() => tasks.sampleSemantic(m, { ...S, segmentation: img(32, 32, () => 200) }), /label 200 .* outside this model's 182 classes/);
});

test('img2img: strength picks the number of steps run; low strength stays near the init latent', () => {
  const m = tinyModel('unconditional');
  const init = img(32, 32, (x, y, c) => (x * 3 + y + c * 40) % 256);
  const steps: number[] = [];
  const lo = tasks.sampleImg2Img(m, { ...S, steps: 20, init, strength: 0.25, onStep: ({ step }) => void steps.push(step) });
  assert.equal(steps.length, 5);
  const hi = tasks.sampleImg2Img(m, { ...S, steps: 20, init, strength: 1 });
  checkOutput(hi, [1, 3, 32, 32]);
  const enc = T.noGrad(() => m.getFirstStageEncoding(m.encodeFirstStage(imageTensor(init))));
  assert.deepEqual(enc.shape, [1, 3, 8, 8]);
  const dist = (a: T.Tensor) => Math.hypot(...a.toArray().map((v, i) => v - enc.toArray()[i]));
  assert.ok(dist(lo.samples) < dist(hi.samples), `strength 0.25 ends nearer the init (${dist(lo.samples)}) than strength 1 (${dist(hi.samples)})`);
  for (const sampler of ['plms', 'dpm++', 'ddpm'] as const) {
    const r = tasks.sampleImg2Img(m, { ...S, sampler, init, strength: 0.01 });
    assert.deepEqual(r.samples.shape, [1, 3, 8, 8]);
  }
  assert.throws(() => tasks.sampleImg2Img(tinyModel('inpainting'), { ...S, init, strength: 0.5 }), /img2img works with unconditional, class-conditional and text-to-image models/);
});

function imageTensor(im: Image): T.Tensor {
  const out = new Float32Array(3 * im.width * im.height);
  for (let i = 0; i < im.width * im.height; i++) for (let c = 0; c < 3; c++) out[c * im.width * im.height + i] = im.data[3 * i + c] / 127.5 - 1;
  return T.tensor(out, [1, 3, im.height, im.width]);
}

test('sampling a LatentDiffusion does not grow memory with the number of steps', () => {
  const m = tinyModel('class');
  const live = (steps: number) => T.tidy(() => {
    tasks.sampleClassConditional(m, { steps, seed: 1, classes: [1], scale: 2, H: 32, W: 32, sampler: 'plms' });
    return T.trackedCount();
  });
  assert.equal(live(4), live(10));
});

test('inpainting conditioning is inpaint.py\'s: [VQ encode(2·(1−m)·x − 1), nearest(2m − 1)], UNet input [x_t, c, mask]', () => {
  const m = tinyModel('inpainting');
  const W = 32, H = 32;
  const image = img(W, H, (x, y, c) => (x * 11 + y * 5 + c * 70) % 256);
  // gray mask with values on both sides of 0.5: threshold ≥ 0.5 (L = 128 → 0.50196 ≥ 0.5 fills; 127 keeps)
  const hole = (x: number, y: number) => x >= 5 && x < 21 && y >= 9 && y < 26;
  const mask = img(W, H, (x, y) => (hole(x, y) ? 128 : 127));
  const seen: T.Tensor[] = [];
  const orig = m.applyModel.bind(m);
  m.applyModel = (x, t, c) => {
    if (seen.length === 0) seen.push(T.keep(T.mulScalar(c as T.Tensor, 1)));
    return orig(x, t, c);
  };
  tasks.sampleInpainting(m, { ...S, image, mask });
  const got = seen[0];
  assert.deepEqual(got.shape, [1, 4, 8, 8]);
  const masked = new Float32Array(3 * W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) {
    masked[(c * H + y) * W + x] = (hole(x, y) ? 0 : image.data[(y * W + x) * 3 + c] / 255) * 2 - 1;
  }
  const enc = T.noGrad(() => (m.first_stage_model.encode as (x: T.Tensor) => T.Tensor)(T.tensor(masked, [1, 3, H, W]))).toArray();
  const g = got.toArray();
  for (let i = 0; i < 3 * 64; i++) assert.ok(Math.abs(g[i] - enc[i]) < 1e-5, `encoded masked image at ${i}: ${g[i]} vs ${enc[i]}`);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) {
    // F.interpolate(mode='nearest'): source pixel floor(i · 32 / 8)
    assert.equal(g[3 * 64 + y * 8 + x], hole(x * 4, y * 4) ? 1 : -1, `mask channel at (${x}, ${y})`);
  }
});

test('super-resolution conditioning is the notebook\'s LR_image: 2·(LR/255) − 1 through Identity, latent of the LR size', () => {
  const m = tinyModel('superres');
  const lowRes = img(16, 8, (x, y, c) => (x * 13 + y * 7 + c * 90) % 256);
  const seen: { c: number[]; x: number[] }[] = [];
  const orig = m.applyModel.bind(m);
  m.applyModel = (x, t, c) => {
    seen.push({ c: (c as T.Tensor).toArray(), x: [...x.shape] });
    return orig(x, t, c);
  };
  const r = tasks.sampleSuperResolution(m, { ...S, lowRes, tiled: false });
  assert.deepEqual(seen[0].x, [1, 3, 8, 16]);
  assert.deepEqual(r.decoded.shape, [1, 3, 32, 64]);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) {
    const want = Math.fround(2 * Math.fround(lowRes.data[(y * 16 + x) * 3 + c] / 255) - 1);
    assert.ok(Math.abs(seen[0].c[(c * 8 + y) * 16 + x] - want) < 1e-6, `LR conditioning at (${x}, ${y}, ${c})`);
  }
  assert.equal(seen.length, 4, 'DDIM 4 steps, no guidance');
});
