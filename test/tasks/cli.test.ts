// `ldm sample`: argument handling, error messages, outputs (PNGs with parameters, latents) and parity of
// the written latents with the golden ldm_ddim_cfg fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { main } from '../../src/cli/main.js';
import { parseSampleArgs, progressReporter } from '../../src/cli/sample.js';
import { readImage, readPngText, tensorToImages, writePng } from '../../src/io/image.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { tinyConfig, tinyModel, tinyVocab, type TinyKind } from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const golden = path.resolve(repoRoot, '../shared/golden/ldm_ddim_cfg');
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-cli-'));

/** Run `ldm …` in-process, capturing what it prints. */
async function ldm(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const w = process.stderr.write.bind(process.stderr), e = console.error, l = console.log;
  process.stderr.write = ((s: string) => ((out += s), true)) as typeof process.stderr.write;
  console.error = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  try {
    return { code: await main(args), out };
  } finally {
    process.stderr.write = w;
    console.error = e;
    console.log = l;
  }
}

function relL2(a: T.Tensor, b: T.Tensor): number {
  const x = a.toArray(), y = b.toArray();
  let n = 0, d = 0;
  for (let i = 0; i < y.length; i++) {
    n += (x[i] - y[i]) ** 2;
    d += y[i] ** 2;
  }
  return Math.sqrt(n / d);
}

/** A tiny model on disk: config.yaml + model.safetensors in a folder. */
function tinyModelDir(kind: TinyKind): string {
  const dir = mkdtempSync(path.join(tmp, `${kind}-`));
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: tinyConfig(kind) }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tinyModel(kind).stateDict());
  return dir;
}

test('ldm sample on the golden ldm_ddim_cfg model: latents equal the fixture (live and EMA), PNGs carry the parameters', async (t) => {
  if (!existsSync(golden)) return t.skip(`golden fixtures not found at ${golden}`);
  const io = readSafetensors(path.join(golden, 'io.safetensors')).tensors;
  for (const [flag, ref] of [['--no-ema', 'samples'], ['--ema', 'samples_ema']] as const) {
    const out = path.join(tmp, `golden${flag}`);
    const r = await ldm('sample', '--config', path.join(golden, 'config.yaml'), '--ckpt', path.join(golden, 'model.ckpt'),
      '--class', '5,0', '--uncond-class', '10', '--scale', '3', '--steps', '10', '--sampler', 'ddim', '--eta', '0',
      '--x-t', `${path.join(golden, 'io.safetensors')}:x_T`, '--save-latents', path.join(out, 'latents.safetensors'), '--out', out, flag);
    assert.equal(r.code, 0, r.out);
    const lat = readSafetensors(path.join(out, 'latents.safetensors')).tensors;
    const err = relL2(lat.get('samples')!, io.get(ref)!);
    assert.ok(err <= 1e-3, `${flag}: latents rel. L2 ${err}`);
    assert.deepEqual(lat.get('x_T')!.toArray(), io.get('x_T')!.toArray());
    const params = JSON.parse(readPngText(path.join(out, 'sample-0000.png')).parameters);
    assert.equal(params.classes, '5,0');
    assert.equal(params.scale, '3');
    assert.equal(params.ema, String(flag === '--ema'));
    assert.equal(params.steps, '10');
    assert.ok(existsSync(path.join(out, 'sample-grid.png')));
    if (flag === '--no-ema') {
      // The written pictures are the fixture's decoded images through the reference's uint8 conversion.
      const want = tensorToImages(io.get('images')!);
      for (const i of [0, 1]) {
        const got = readImage(path.join(out, `sample-000${i}.png`));
        assert.equal(got.width, 16);
        let maxDiff = 0;
        for (let k = 0; k < 16 * 16; k++) for (let c = 0; c < 3; c++) maxDiff = Math.max(maxDiff, Math.abs(got.data[4 * k + c] - want[i].data[3 * k + c]));
        assert.ok(maxDiff <= 1, `image ${i}: max pixel difference ${maxDiff}`);
      }
    }
  }
});

test('ldm sample: wrong task, bad sizes, missing vocab, bad options give clear errors', async () => {
  const uncond = tinyModelDir('unconditional');
  let r = await ldm('sample', '--ckpt', uncond, '--prompt', 'a fox');
  assert.equal(r.code, 2);
  assert.match(r.out, /--prompt is for text-to-image models, but this is an unconditional model \(it takes no conditioning input\)/);
  r = await ldm('sample', '--ckpt', uncond, '--H', '30', '--W', '32', '--steps', '2', '--quiet');
  assert.equal(r.code, 2);
  assert.match(r.out, /height 30 is not divisible by the first stage's downsampling factor f = 4/);
  r = await ldm('sample', '--ckpt', uncond, '--steps', '27');
  assert.equal(r.code, 2);
  assert.match(r.out, /27 steps would use timestep 1000.*26 or 28/);
  assert.doesNotMatch(r.out, /loaded /, 'a bad step count is refused before the model is loaded');
  r = await ldm('sample', '--ckpt', uncond, '--sampler', 'euler');
  assert.match(r.out, /--sampler must be one of ddim, plms, dpm\+\+, ddpm/);
  r = await ldm('sample', '--ckpt', uncond, '--bogus', '1');
  assert.equal(r.code, 2);
  assert.match(r.out, /unknown option --bogus/);
  r = await ldm('sample', '--ckpt', uncond, '--sampler', 'ddpm', '--steps', '10');
  assert.match(r.out, /--steps does not apply to the ddpm sampler/);
  r = await ldm('sample', '--ckpt', uncond, '--ema');
  assert.match(r.out, /has no EMA weights/);
  const text = tinyModelDir('text');
  r = await ldm('sample', '--ckpt', text, '--prompt', 'a fox');
  assert.equal(r.code, 2);
  assert.match(r.out, /vocab\.txt .*--vocab/);
  r = await ldm('sample', '--ckpt', text, '--prompt', 'a fox', '--vocab', path.join(tmp, 'nope.txt'));
  assert.match(r.out, /vocab file .*nope\.txt does not exist/);
  r = await ldm('sample', '--ckpt', text, '--class', '3');
  assert.match(r.out, /--class is for class models, but this is a text model \(use --prompt\)/);
  r = await ldm('sample', '--ckpt', path.join(tmp, 'missing'));
  assert.match(r.out, /does not exist/);
  assert.throws(() => parseSampleArgs(['--n']), /--n needs a value/);
  assert.throws(() => parseSampleArgs(['--ema', '--no-ema']), /either --ema or --no-ema/);
  assert.deepEqual(parseSampleArgs(['--prompt=a', '--prompt', 'b']).values.get('prompt'), ['a', 'b']);
});

test('ldm sample: text-to-image with guidance and a grid; inpainting from files keeps known pixels', async () => {
  const text = tinyModelDir('text');
  const out = path.join(tmp, 'txt');
  let r = await ldm('sample', '--ckpt', text, '--prompt', 'a painting of a fox', '--vocab', tinyVocab(), '--n', '2', '--steps', '4', '--sampler', 'plms', '--H', '64', '--W', '64', '--out', out, '--seed', '7');
  assert.equal(r.code, 0, r.out);
  const params = JSON.parse(readPngText(path.join(out, 'sample-0001.png')).parameters);
  assert.equal(params.prompt, 'a painting of a fox');
  assert.equal(params.scale, '5');
  assert.equal(params.sampler, 'plms');
  assert.equal(params.seed, '7');
  assert.equal(readImage(path.join(out, 'sample-grid.png')).width, 2 * 66 + 2);
  const inp = tinyModelDir('inpainting');
  const w = 32, h = 32;
  const image = { width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 13) % 256) };
  const mask = { width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (Math.floor(i / 3) % w >= 16 ? 255 : 0)) };
  writePng(path.join(tmp, 'img.png'), image);
  writePng(path.join(tmp, 'mask.png'), mask);
  const out2 = path.join(tmp, 'inp');
  r = await ldm('sample', '--ckpt', inp, '--image', path.join(tmp, 'img.png'), '--mask', path.join(tmp, 'mask.png'), '--steps', '4', '--out', out2, '--quiet');
  assert.equal(r.code, 0, r.out);
  const got = readImage(path.join(out2, 'sample-0000.png'));
  for (let k = 0; k < w * h; k++) {
    if (k % w < 16) for (let c = 0; c < 3; c++) assert.equal(got.data[4 * k + c], image.data[3 * k + c]);
  }
  assert.equal(readFileSync(path.join(out2, 'sample-0000.png')).subarray(1, 4).toString(), 'PNG');
});

test('progress: a bar with it/s and ETA on a terminal, plain lines otherwise', () => {
  let s = '';
  const tty = progressReporter('ddim', (x) => void (s += x), true);
  for (let i = 0; i < 4; i++) tty.onStep({ step: i, total: 4, t: 0, x: T.zeros([1]), predX0: T.zeros([1]) });
  tty.done();
  assert.match(s, /^\rddim \[#{8}\.{22}\] 1\/4 .* it\/s ETA /);
  assert.match(s, /\[#{30}\] 4\/4/);
  assert.ok(s.endsWith('\n'));
  let plain = '';
  const p = progressReporter('plms', (x) => void (plain += x), false);
  for (let i = 0; i < 40; i++) p.onStep({ step: i, total: 40, t: 0, x: T.zeros([1]), predX0: T.zeros([1]) });
  const lines = plain.trim().split('\n');
  assert.equal(lines.length, 21);
  assert.ok(lines.every((l) => /^plms: step \d+\/40 [\d.]+ it\/s ETA /.test(l)));
  assert.ok(!plain.includes('\r'));
});
