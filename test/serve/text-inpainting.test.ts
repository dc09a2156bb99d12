// The server's job path for Stable Diffusion's inpainting model (hybrid: prompt + mask + masked picture):
// the model is described with mode inpaint only, a request is checked, and the job's PNGs are the library's
// text-guided inpainting results (same latents as sample() with the job's settings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../../src/serve/limits.js';
import { describeModel } from '../../src/serve/model-info.js';
import { checkJobRequest } from '../../src/serve/request.js';
import { generate } from '../../src/serve/generate.js';
import { decodeImage, encodePng, readPngText, type Image } from '../../src/io/image.js';
import * as tasks from '../../src/tasks/index.js';
import { tinyClipVocab, tinyModel } from '../tasks/helpers.js';

const W = 64;
const picture: Image = { width: W, height: W, channels: 3, data: Uint8Array.from({ length: W * W * 3 }, (_, i) => (i * 5) % 256) };
const mask: Image = { width: W, height: W, channels: 3, data: Uint8Array.from({ length: W * W * 3 }, (_, i) => (Math.floor(i / 3) % W >= 32 ? 255 : 0)) };

test('serve: an SD-style inpainting model takes prompt, init_image and mask; its job equals the library\'s text-guided inpainting', () => {
  const model = tinyModel('text-inpainting');
  const vocab = tinyClipVocab();
  const info = describeModel('sd-inpaint', model);
  assert.deepEqual([info.task, info.modes, info.text, info.defaults.scale], ['text-inpainting', ['inpaint'], true, 5]);
  const b64 = (im: Image) => encodePng(im).toString('base64');
  const req = { prompt: 'a fox', negative_prompt: 'blur', init_image: b64(picture), mask: b64(mask), steps: 4, seed: 9, preview: false };
  assert.throws(() => checkJobRequest({ ...req, prompt: undefined }, info, DEFAULT_LIMITS), /model sd-inpaint is a text-guided inpainting model: give a prompt/);
  assert.throws(() => checkJobRequest({ ...req, strength: 0.5 }, info, DEFAULT_LIMITS), /strength does not apply to model sd-inpaint/);
  assert.throws(() => checkJobRequest({ ...req, mode: 'generate' }, info, DEFAULT_LIMITS), /mode generate is not available with model sd-inpaint/);
  const spec = checkJobRequest(req, info, DEFAULT_LIMITS);
  const r = generate(model, info, spec, { onProgress: () => {}, cancelled: () => false, vocabFile: vocab });
  assert.equal(r.images.length, 1);
  const params = JSON.parse(readPngText(r.images[0]).parameters);
  assert.equal(params.task, 'text-inpainting');
  assert.equal(params.negative_prompt, 'blur');
  const lib = tasks.sample(model, { prompt: 'a fox', negativePrompt: 'blur', image: picture, mask, steps: 4, seed: 9, scale: 5, vocab, sampler: 'ddim', eta: 0 });
  const got = decodeImage(r.images[0]);
  const rgb = got.data.filter((_, i) => i % got.channels < 3);
  assert.deepEqual(rgb, lib.images[0].data);
});

test('serve: masked img2img draws each image\'s first-stage posterior from its own seed, as the library does (image i = seed + i alone)', () => {
  const model = tinyModel('churches'); // unconditional, AutoencoderKL f = 4
  const info = describeModel('churches', model);
  const S = 64;
  const init: Image = { width: S, height: S, channels: 3, data: Uint8Array.from({ length: S * S * 3 }, (_, i) => (i * 3) % 256) };
  const hole: Image = { width: S, height: S, channels: 3, data: Uint8Array.from({ length: S * S * 3 }, (_, i) => (Math.floor(i / 3 / S) >= 32 ? 255 : 0)) };
  const b64 = (im: Image) => encodePng(im).toString('base64');
  const spec = checkJobRequest({ init_image: b64(init), mask: b64(hole), steps: 4, seed: 5, n: 2, preview: false }, info, DEFAULT_LIMITS);
  const r = generate(model, info, spec, { onProgress: () => {}, cancelled: () => false });
  assert.equal(r.images.length, 2);
  const second = decodeImage(r.images[1]);
  const lib = tasks.sample(model, { initImage: init, mask: hole, steps: 4, seed: 6, sampler: 'ddim', eta: info.defaults.eta });
  assert.deepEqual(second.data.filter((_, i) => i % second.channels < 3), lib.images[0].data);
});
