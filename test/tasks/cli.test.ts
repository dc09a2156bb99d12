// `ldm sample`: argument handling, error messages, outputs (PNGs with parameters, latents) and parity of
// the written latents with the golden ldm_ddim_cfg fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { parseSampleArgs, progressReporter, SAMPLE_OPTIONS } from '../../src/cli/sample.js';
import { OutputFolder } from '../../src/cli/output.js';
import { ModelFilesError, resolveModelFiles } from '../../src/loader/model.js';
import * as tasks from '../../src/tasks/index.js';
import { tinyModelsDir } from '../api/fixtures.js';
import { readImage, readPngText, tensorToImages, writePng } from '../../src/io/image.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { tinyConfig, tinyModel, tinyModelDir as tinyModelDirIn, tinyVocab, type TinyKind } from './helpers.js';
import { runCli } from '../cli/run-cli.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const golden = path.resolve(repoRoot, '../shared/golden/ldm_ddim_cfg');
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-cli-'));

const ldm = (...args: string[]) => runCli(args);

function relL2(a: T.Tensor, b: T.Tensor): number {
  const x = a.toArray(), y = b.toArray();
  let n = 0, d = 0;
  for (let i = 0; i < y.length; i++) {
    n += (x[i] - y[i]) ** 2;
    d += y[i] ** 2;
  }
  return Math.sqrt(n / d);
}

const tinyModelDir = (kind: TinyKind) => tinyModelDirIn(kind, tmp);

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
    const params = JSON.parse(readPngText(path.join(out, 'sample-0000-seed42.png')).parameters);
    assert.equal(params.classLabel, 5);
    assert.equal(JSON.parse(readPngText(path.join(out, 'sample-0001-seed43.png')).parameters).classLabel, 0);
    assert.equal(params.scale, 3);
    assert.equal(params.model.ema, flag === '--ema');
    assert.equal(params.steps, 10);
    assert.equal(params.x_t.name, 'x_T');
    assert.ok(existsSync(path.join(out, 'sample-0002-grid.png')));
    if (flag === '--no-ema') {
      // The written pictures are the fixture's decoded images through the reference's uint8 conversion.
      const want = tensorToImages(io.get('images')!);
      for (const i of [0, 1]) {
        const got = readImage(path.join(out, `sample-000${i}-seed${42 + i}.png`));
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
  assert.match(r.out, /--prompt is for text-to-image or text-guided inpainting models, but this is an unconditional model \(it takes no conditioning input\)/);
  r = await ldm('sample', '--ckpt', uncond, '--H', '30', '--W', '32', '--steps', '2', '--quiet');
  assert.equal(r.code, 2);
  assert.match(r.out, /height 30 is not divisible by the first stage's downsampling factor f = 4/);
  r = await ldm('sample', '--ckpt', uncond, '--steps', '27');
  assert.equal(r.code, 2);
  assert.match(r.out, /--steps: DDIM: 27 steps would use timestep 1000.*26 or 28/);
  assert.doesNotMatch(r.out, /loaded /, 'a bad step count is refused before the model is loaded');
  r = await ldm('sample', '--ckpt', uncond, '--sampler', 'bogus');
  assert.match(r.out, /--sampler must be one of ddim, plms, dpm\+\+, ddpm, euler.*got "bogus"/);
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
  assert.match(r.out, /--vocab: text prompts need the bert-base-uncased vocab\.txt/);
  r = await ldm('sample', '--ckpt', text, '--prompt', 'a fox', '--vocab', path.join(tmp, 'nope.txt'));
  assert.match(r.out, /vocab file .*nope\.txt does not exist/);
  r = await ldm('sample', '--ckpt', text, '--class', '3');
  assert.match(r.out, /--class is for class-conditional models, but this is a text-to-image model \(use --prompt\)/);
  r = await ldm('sample', '--ckpt', path.join(tmp, 'missing'));
  assert.match(r.out, /--ckpt: .*missing does not exist/);
  assert.throws(() => parseSampleArgs(['--n']), /--n needs a value/);
  assert.throws(() => parseSampleArgs(['--ema', '--no-ema']), /either --ema or --no-ema/);
  assert.deepEqual(parseSampleArgs(['--prompt=a', '--prompt', 'b']).values.get('prompt'), ['a', 'b']);
});

test('ldm sample: text-to-image with guidance and a grid; inpainting from files keeps known pixels', async () => {
  const text = tinyModelDir('text');
  const out = path.join(tmp, 'txt');
  let r = await ldm('sample', '--ckpt', text, '--prompt', 'a painting of a fox', '--vocab', tinyVocab(), '--n', '2', '--steps', '4', '--sampler', 'plms', '--H', '64', '--W', '64', '--out', out, '--seed', '7');
  assert.equal(r.code, 0, r.out);
  const params = JSON.parse(readPngText(path.join(out, 'sample-0001-seed8.png')).parameters);
  assert.equal(params.prompt, 'a painting of a fox');
  assert.equal(params.scale, 5);
  assert.equal(params.sampler, 'plms');
  assert.equal(params.seed, 8);
  assert.equal(readImage(path.join(out, 'sample-0002-grid.png')).width, 2 * 66 + 2);
  const inp = tinyModelDir('inpainting');
  const w = 32, h = 32;
  const image = { width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 13) % 256) };
  const mask = { width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (Math.floor(i / 3) % w >= 16 ? 255 : 0)) };
  writePng(path.join(tmp, 'img.png'), image);
  writePng(path.join(tmp, 'mask.png'), mask);
  const out2 = path.join(tmp, 'inp');
  r = await ldm('sample', '--ckpt', inp, '--image', path.join(tmp, 'img.png'), '--mask', path.join(tmp, 'mask.png'), '--steps', '4', '--out', out2, '--quiet');
  assert.equal(r.code, 0, r.out);
  const got = readImage(path.join(out2, 'sample-0000-seed42.png'));
  const rec = JSON.parse(readPngText(path.join(out2, 'sample-0000-seed42.png')).parameters);
  assert.equal(rec.image.sha256, createHash('sha256').update(readFileSync(path.join(tmp, 'img.png'))).digest('hex'));
  assert.equal(rec.mask.path, path.join(tmp, 'mask.png'));
  for (let k = 0; k < w * h; k++) {
    if (k % w < 16) for (let c = 0; c < 3; c++) assert.equal(got.data[4 * k + c], image.data[3 * k + c]);
  }
  assert.equal(readFileSync(path.join(out2, 'sample-0000-seed42.png')).subarray(1, 4).toString(), 'PNG');
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

test('ldm --version, ldm --help and ldm sample --help: every option with its default, no outside documents', async () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  let r = await ldm('--version');
  assert.equal(r.code, 0);
  assert.equal(r.out.trim(), pkg.version);
  r = await ldm('--help');
  assert.equal(r.code, 0);
  for (const c of ['sample', 'models', 'convert', 'golden']) assert.match(r.out, new RegExp(`^  ${c} `, 'm'));
  assert.match(r.out, /-V, --version/);
  r = await ldm('sample', '--help');
  assert.equal(r.code, 0);
  for (const o of SAMPLE_OPTIONS) {
    const line = r.out.split('\n').find((l) => new RegExp(`^  (-\\w, |    )--${o.name}( |$)`).test(l));
    assert.ok(line, `--${o.name} is listed`);
    if (o.short) assert.ok(line.includes(`-${o.short}, --${o.name}`), `-${o.short} is listed for --${o.name}`);
  }
  assert.match(r.out, /-s, --seed N +seed of the first image; image i uses seed \+ i \(default: 42\)/);
  assert.match(r.out, /-n, --n N +images per prompt \/ class \/ input \(default: 1\)/);
  assert.match(r.out, /--strength S .*\(default: 0\.75; 1 with --mask\)/);
  assert.equal(tasks.DEFAULTS.seed, 42);
  // No user-facing text in src/ cites documents outside the repository.
  const hits = spawnSync('grep', ['-rlE', ['LDM-' + 'REFERENCE', 'the ' + 'brief'].join('|'), path.join(repoRoot, 'src')], { encoding: 'utf8' }).stdout.trim();
  assert.equal(hits, '', `files citing outside documents: ${hits}`);
});

test('--ckpt on a folder: weights by name (model.*, weights.*, *.ckpt), never another .safetensors; ambiguous folders list the candidates', () => {
  const dir = mkdtempSync(path.join(tmp, 'folder-'));
  writeFileSync(path.join(dir, 'config.yaml'), 'model: {}\n');
  writeFileSync(path.join(dir, 'io.safetensors'), '');
  assert.throws(() => resolveModelFiles(dir), /holds no model weights \(looked for model\.\*, weights\.\*, \*\.ckpt\); io\.safetensors is not taken as weights by name/);
  writeFileSync(path.join(dir, 'weights.safetensors'), '');
  assert.deepEqual(resolveModelFiles(dir), { config: path.join(dir, 'config.yaml'), ckpt: path.join(dir, 'weights.safetensors') });
  writeFileSync(path.join(dir, 'model.ckpt'), '');
  assert.equal(resolveModelFiles(dir).ckpt, path.join(dir, 'model.ckpt'), 'model.* before weights.*');
  writeFileSync(path.join(dir, 'model.safetensors'), '');
  assert.throws(() => resolveModelFiles(dir), (e: unknown) => e instanceof ModelFilesError && e.input === 'ckpt' && /several weight files \(model\.ckpt, model\.safetensors\)/.test(e.message));
  const runs = mkdtempSync(path.join(tmp, 'runs-'));
  writeFileSync(path.join(runs, 'config.yaml'), 'model: {}\n');
  writeFileSync(path.join(runs, 'last.ckpt'), '');
  assert.equal(resolveModelFiles(runs).ckpt, path.join(runs, 'last.ckpt'));
  writeFileSync(path.join(runs, 'epoch=3.ckpt'), '');
  assert.throws(() => resolveModelFiles(runs), /several weight files \(epoch=3\.ckpt, last\.ckpt\)/);
  const bare = mkdtempSync(path.join(tmp, 'bare-'));
  writeFileSync(path.join(bare, 'model.ckpt'), '');
  assert.throws(() => resolveModelFiles(bare), (e: unknown) => e instanceof ModelFilesError && e.input === 'config');
});

test('embedded models: ldm models lists them; ldm sample alone samples every class; seed + i regenerates image i bit for bit; parameters are JSON', async () => {
  const models = tinyModelsDir();
  process.env.LDM_MODELS_DIR = models;
  try {
    let r = await ldm('models');
    assert.equal(r.code, 0);
    assert.match(r.out, /^digits \(default\): tiny random-weight digits model/m);
    assert.match(r.out, /class-conditional, 10 classes \(0, 1, .*9\); 32×32; steps 4, scale 3/);
    // No model argument: the default embedded model, one image of every class and a grid.
    const all = path.join(tmp, 'all');
    r = await ldm('sample', '-o', all, '-q');
    assert.equal(r.code, 0, r.out);
    const files = readdirSync(all).sort();
    assert.equal(files.length, 11);
    assert.deepEqual(files.slice(0, 3), ['sample-0000-seed42.png', 'sample-0001-seed43.png', 'sample-0002-seed44.png']);
    assert.equal(files[10], 'sample-0010-grid.png');
    assert.equal(readImage(path.join(all, files[10])).width, 10 * 34 + 2, 'one row of ten classes');
    const p3 = JSON.parse(readPngText(path.join(all, 'sample-0003-seed45.png')).parameters);
    assert.equal(p3.classLabel, 3);
    assert.equal(p3.seed, 45);
    assert.equal(p3.steps, 4);
    assert.equal(p3.scale, 3);
    assert.equal(p3.uncond_class, 10);
    assert.equal(p3.width, 32);
    assert.equal(p3.model.name, 'digits');
    assert.equal(p3.model.ckpt, path.join(models, 'digits', 'model.safetensors'));
    assert.equal(p3.model.ckpt_sha256, createHash('sha256').update(readFileSync(p3.model.ckpt)).digest('hex'));
    assert.equal(p3.command, 'ldm sample digits --class 3 --seed 45 --n 1');

    // A batch of three sevens from seed 10, in batches of two; image 2 again alone with its seed.
    const batch = path.join(tmp, 'batch');
    r = await ldm('sample', '--class', '7', '-n', '3', '-s', '10', '-b', '2', '-o', batch, '--no-grid', '-q', '--sampler', 'ddim', '--eta', '1');
    assert.equal(r.code, 0, r.out);
    const again = path.join(tmp, 'again');
    r = await ldm('sample', '--class', '7', '-s', '12', '-n', '1', '-o', again, '-q', '--sampler', 'ddim', '--eta', '1');
    assert.equal(r.code, 0, r.out);
    const a = readImage(path.join(batch, 'sample-0002-seed12.png')), b = readImage(path.join(again, 'sample-0000-seed12.png'));
    assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), 'image 2 of the batch = seed 12 alone (bit-identical pixels)');
    assert.ok(!Buffer.from(a.data).equals(Buffer.from(readImage(path.join(batch, 'sample-0001-seed11.png')).data)));
    // The recorded command makes it again (run in-process).
    const cmd = JSON.parse(readPngText(path.join(batch, 'sample-0002-seed12.png')).parameters).command as string;
    assert.equal(cmd, 'ldm sample digits --sampler ddim --eta 1 --class 7 --seed 12 --n 1');
    // No overwriting: a second run numbers onward; --overwrite starts again at 0000.
    r = await ldm('sample', ...cmd.split(' ').slice(2), '-o', again, '-q');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(readdirSync(again).sort(), ['sample-0000-seed12.png', 'sample-0001-seed12.png']);
    assert.ok(Buffer.from(readImage(path.join(again, 'sample-0001-seed12.png')).data).equals(Buffer.from(b.data)));
    r = await ldm('sample', '--class', '1', '-o', again, '-q', '--overwrite');
    assert.deepEqual(readdirSync(again).sort(), ['sample-0000-seed42.png', 'sample-0000-seed12.png', 'sample-0001-seed12.png'].sort());
    r = await ldm('sample', '--class', '1', '-o', again, '-q', '--save-latents', path.join(again, 'sample-0000-seed42.png'));
    assert.equal(r.code, 2);
    assert.match(r.out, /--save-latents: .* exists \(give another name, or --overwrite\)/);
    r = await ldm('sample', '--class', '12', '-q', '-o', again);
    assert.match(r.out, /--class: class 12 is outside this model's classes 0…10/);
    r = await ldm('sample', 'nosuchmodel');
    assert.match(r.out, /model: nosuchmodel does not exist and is not an embedded model \(digits\)/);
  } finally {
    delete process.env.LDM_MODELS_DIR;
  }
});

test('output files: two writers into one folder never take the same name (exclusive create)', () => {
  const dir = mkdtempSync(path.join(tmp, 'race-'));
  const a = new OutputFolder(dir, 'x'), b = new OutputFolder(dir, 'x'); // both start at 0000, as two processes would
  const names = [a.write(() => '.png', Buffer.from('a0')), b.write(() => '.png', Buffer.from('b0')), b.write(() => '.png', Buffer.from('b1')), a.write(() => '.png', Buffer.from('a1'))];
  assert.equal(new Set(names).size, 4);
  assert.deepEqual(readdirSync(dir).sort(), ['x-0000.png', 'x-0001.png', 'x-0002.png', 'x-0003.png']);
  assert.equal(readFileSync(path.join(dir, 'x-0000.png'), 'utf8'), 'a0');
  assert.equal(readFileSync(path.join(dir, 'x-0001.png'), 'utf8'), 'b0');
});
