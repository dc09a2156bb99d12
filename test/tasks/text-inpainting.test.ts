// Inpainting beyond the concat models: Stable Diffusion's 9-channel hybrid inpainting model (prompt +
// mask + masked image), and masked img2img (latent blending) for any unconditional, class or text model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import * as tasks from '../../src/tasks/index.js';
import type { CondDict } from '../../src/diffusion/guidance.js';
import { DiagonalGaussianDistribution } from '../../src/models/autoencoder/index.js';
import { readImage, readPngText, writePng, type Image } from '../../src/io/image.js';
import { runCli } from '../cli/run-cli.js';
import { tinyClipVocab, tinyModel, tinyModelDir } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-txtinp-'));
const W = 64, H = 64;
const picture = (w: number, h: number): Image => ({ width: w, height: h, channels: 3, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7 + (i >> 6)) % 256) });
// gray levels on both sides of 0.5: L = 128 fills (128/255 ≥ 0.5), 127 keeps
const hole = (x: number, y: number) => x >= 20 && x < 44 && y >= 8 && y < 40;
const maskOf = (w: number, h: number, inside: (x: number, y: number) => boolean): Image =>
  ({ width: w, height: h, channels: 3, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (inside(Math.floor(i / 3) % w, Math.floor(i / 3 / w)) ? 128 : 127)) });

function knownPixelsKept(out: Image, input: Image, inside: (x: number, y: number) => boolean): { kept: number; changed: number } {
  let kept = 0, changed = 0;
  for (let y = 0; y < input.height; y++) for (let x = 0; x < input.width; x++) {
    for (let c = 0; c < 3; c++) {
      const p = y * input.width + x, got = out.data[p * out.channels + c], want = input.data[p * 3 + c];
      if (inside(x, y)) changed += got !== want ? 1 : 0;
      else assert.equal(got, want, `known pixel (${x}, ${y}) channel ${c}`);
      kept += inside(x, y) ? 0 : 1;
    }
  }
  return { kept, changed };
}

test('text-guided inpainting (SD hybrid model): UNet input [x_t, mask, encode(x·(m < 0.5))], the prompt as context and "" under guidance', () => {
  const m = tinyModel('text-inpainting');
  assert.equal(tasks.modelTask(m), 'text-inpainting');
  const vocab = tinyClipVocab();
  const image = picture(W, H), mask = maskOf(W, H, hole);
  const seen: CondDict[] = [];
  const orig = m.applyModel.bind(m);
  m.applyModel = (x, t, c, o) => {
    if (seen.length === 0) {
      const d = c as CondDict;
      seen.push({ c_concat: d.c_concat!.map((v) => T.keep(T.mulScalar(v, 1))), c_crossattn: d.c_crossattn!.map((v) => T.keep(T.mulScalar(v, 1))) });
    }
    return orig(x, t, c, o);
  };
  const r = tasks.sample(m, { prompt: 'a red fox', image, mask, steps: 4, scale: 4, seed: 3, vocab, n: 2 });
  m.applyModel = orig;
  assert.equal(r.task, 'text-inpainting');
  assert.deepEqual(r.samples.shape, [2, 4, 8, 8]);
  assert.equal(r.params.scale, 4);

  // Guidance batches [uncond; cond]: 2 images → 4 rows; the concat input is the same in both halves.
  const cat = seen[0].c_concat![0], ctx = seen[0].c_crossattn![0];
  assert.deepEqual(cat.shape, [4, 5, 8, 8]);
  const cv = cat.toArray();
  const row = (b: number) => cv.slice(b * 5 * 64, (b + 1) * 5 * 64);
  assert.deepEqual(row(0), row(2));
  assert.deepEqual(row(1), row(3));
  // channel 0: the mask, nearest-resized (pixel (8x, 8y)), 0/1
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assert.equal(cv[y * 8 + x], hole(8 * x, 8 * y) ? 1 : 0, `mask cell (${x}, ${y})`);
  // channels 1–4: scale_factor × a posterior draw of the first stage's encoding of x·(mask < 0.5), x in [−1, 1]
  const masked = new Float32Array(3 * W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) {
    masked[(c * H + y) * W + x] = hole(x, y) ? 0 : image.data[(y * W + x) * 3 + c] / 127.5 - 1;
  }
  const post = T.noGrad(() => m.first_stage_model.encode!(T.tensor(masked, [1, 3, H, W]))) as DiagonalGaussianDistribution;
  for (const i of [0, 1]) {
    const z = T.noGrad(() => T.mulScalar(post.sample(new T.Generator(3 + i + 0x5eed)), 0.18215)).toArray();
    const got = row(i).slice(64);
    const err = Math.max(...z.map((v, k) => Math.abs(v - got[k])));
    assert.ok(err < 1e-5, `image ${i}: encoded masked image differs by ${err}`);
  }
  assert.notDeepEqual(row(0).slice(64), row(1).slice(64), 'each image draws its own posterior sample');
  // cross-attention: "" for the unconditional half, the prompt for the conditional one
  const [uc, c] = T.noGrad(() => [m.getLearnedConditioning(['']), m.getLearnedConditioning(['a red fox'])]).map((t) => t.toArray());
  const cx = ctx.toArray(), per = uc.length;
  assert.deepEqual(cx.slice(0, per), uc);
  assert.deepEqual(cx.slice(2 * per, 3 * per), c);

  // the unmasked pixels come back byte for byte; the hole is new
  for (const im of r.images) {
    const { kept, changed } = knownPixelsKept(im, image, hole);
    assert.equal(kept, 3 * (W * H - 24 * 32));
    assert.ok(changed > 0.5 * 3 * 24 * 32, `${changed} of the hole's values changed`);
  }
  // image 1 of the batch is seed 4 alone
  const alone = tasks.sample(m, { prompt: 'a red fox', image, mask, steps: 4, scale: 4, seed: 4, vocab });
  assert.deepEqual(alone.samples.toArray(), r.samples.toArray().slice(4 * 64));
  // a negative prompt replaces "" as the unconditional context
  const neg = tasks.sample(m, { prompt: 'a red fox', negativePrompt: 'blurry', image, mask, steps: 4, scale: 4, seed: 4, vocab });
  assert.notDeepEqual(neg.samples.toArray(), alone.samples.toArray());
});

test('text-guided inpainting: planSample wants a prompt, the image and a mask of its size; refuses class labels and strength; guidance 5 by default', () => {
  const m = tinyModel('text-inpainting');
  const vocab = tinyClipVocab();
  const image = picture(W, H), mask = maskOf(W, H, hole);
  const plan = (o: tasks.SampleOptions) => tasks.planSample(m, { vocab, ...o });
  assert.throws(() => plan({ image, mask }), /this is a text-guided inpainting model: give a prompt/);
  assert.throws(() => plan({ prompt: 'a', image }), /this is a text-guided inpainting model: give the image and a mask/);
  assert.throws(() => plan({ prompt: 'a', image, mask: maskOf(32, 64, hole) }), /the mask is 32×64 but the image is 64×64/);
  assert.throws(() => plan({ prompt: 'a', image, mask, classLabel: 3 }), /a class label is for class-conditional models, but this is a text-guided inpainting model/);
  assert.throws(() => plan({ prompt: 'a', image, mask, strength: 0.5 }), /strength applies to img2img/);
  assert.throws(() => plan({ prompt: 'a', image: picture(60, 64), mask: maskOf(60, 64, hole) }), /the image is 60×64 pixels; its width must be a multiple of 16/);
  const p = plan({ prompt: 'a', initImage: image, mask });
  assert.equal(p.task, 'text-inpainting');
  assert.equal(p.scale, tasks.DEFAULTS.textScale);
  assert.equal(p.inpaintImage, image);
  assert.equal(tasks.takersOf('mask'), 'inpainting or text-guided inpainting models, or img2img with an initial image');
});

test('masked img2img (any unconditional, class or text model): the latent outside the mask stays the init\'s, known pixels exact, strength 1 by default', () => {
  const m = tinyModel('unconditional'); // VQ f = 4: 32×32 pictures, 8×8 latents
  const init = picture(32, 32);
  const inside = (x: number, y: number) => x >= 12 && y >= 4 && y < 20;
  const mask = maskOf(32, 32, inside);
  let steps = 0;
  const r = tasks.sample(m, { initImage: init, mask, steps: 10, seed: 5, onStep: () => void steps++ });
  assert.equal(steps, 10, 'with a mask, strength defaults to 1 (the masked region from noise)');
  assert.equal(r.params.task, 'inpaint');
  const { changed } = knownPixelsKept(r.images[0], init, inside);
  assert.ok(changed > 0, 'the masked region is new');
  const plain = tasks.sample(m, { initImage: init, strength: 1, steps: 10, seed: 5 });
  // latent cells none of whose pixels is masked (x < 12, or y outside [4, 20)) stay near the init latent
  const x0 = T.noGrad(() => m.getFirstStageEncoding(m.encodeFirstStage(T.sub(T.mulScalar(T.tensor(Float32Array.from(
    { length: 3 * 32 * 32 }, (_, k) => init.data[(k % 1024) * 3 + Math.floor(k / 1024)]), [1, 3, 32, 32]), 1 / 127.5), 1)))).toArray();
  const keptCell = (k: number) => { const j = k % 64, x = j % 8, y = Math.floor(j / 8); return x < 3 || y < 1 || y >= 5; };
  const far = (s: T.Tensor) => { const v = s.toArray(); let d = 0, n = 0; v.forEach((a, k) => { if (keptCell(k)) { d += Math.abs(a - x0[k]); n++; } }); return d / n; };
  assert.ok(far(r.samples) < 0.2 * far(plain.samples), `kept cells: ${far(r.samples).toFixed(4)} from the init latent with the mask, ${far(plain.samples).toFixed(4)} without`);
  assert.throws(() => tasks.planSample(m, { mask }), /an unconditional model inpaints through img2img: give the initial image the mask applies to/);
  assert.throws(() => tasks.planSample(m, { initImage: init, mask: maskOf(32, 16, inside) }), /the mask is 32×16 but the initial image is 32×32/);
  assert.throws(() => tasks.planSample(tinyModel('semantic'), { mask }), /a mask is for inpainting or text-guided inpainting models, or img2img with an initial image, but this is a semantic-synthesis model/);
});

test('ldm sample on an SD-style inpainting model: --prompt, --image, --mask, --negative-prompt; the command recorded in each PNG makes it again', async () => {
  const dir = tinyModelDir('text-inpainting', tmp);
  const vocab = tinyClipVocab();
  const image = picture(W, H), mask = maskOf(W, H, hole);
  writePng(path.join(tmp, 'img.png'), image);
  writePng(path.join(tmp, 'mask.png'), mask);
  const out = path.join(tmp, 'out');
  const args = ['--image', path.join(tmp, 'img.png'), '--mask', path.join(tmp, 'mask.png'), '--vocab-dir', vocab, '--steps', '4'];
  let r = await runCli(['sample', dir, ...args, '--prompt', 'a fox', '--negative-prompt', 'blur', '--n', '2', '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.out);
  const file = path.join(out, 'sample-0001-seed43.png');
  const rec = JSON.parse(readPngText(file).parameters);
  assert.equal(rec.task, 'text-inpainting');
  assert.equal(rec.prompt, 'a fox');
  assert.equal(rec.negative_prompt, 'blur');
  assert.equal(rec.scale, 5);
  assert.match(rec.command, /--negative-prompt blur .*--seed 43 --n 1/);
  knownPixelsKept(readImage(file), image, hole);
  // the recorded command, run again, gives the same picture
  const again = path.join(tmp, 'again');
  r = await runCli(['sample', dir, ...args, '--prompt', 'a fox', '--negative-prompt', 'blur', '--seed', '43', '--n', '1', '--out', again, '--quiet']);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(readImage(path.join(again, 'sample-0000-seed43.png')).data, readImage(file).data);
  r = await runCli(['sample', dir, ...args, '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.out, /this is a text-guided inpainting model: give --prompt/);
  r = await runCli(['sample', dir, ...args, '--prompt', 'a fox', '--class', '1']);
  assert.match(r.out, /--class is for class-conditional models, but this is a text-guided inpainting model \(use --prompt and --image and --mask\)/);
});
