// Bad input to `ldm sample` and `ldm convert`: every case is refused before the model's weights load (no
// "loaded …" line: the whole output is compared) with exit status 2, one message naming the flag, and
// nothing written. Runs the CLI's main() in-process; the embedded MNIST model and tiny model folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { writePng, type Image } from '../../src/io/image.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { modelsDir } from '../../src/loader/embedded.js';
import { tinyConfig, tinyModel, tinyVocab, type TinyKind } from '../tasks/helpers.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-bad-input-'));
const out = path.join(tmp, 'out');

const ldm = runCli;

function modelDir(kind: TinyKind, edit?: (c: any) => void): string {
  const dir = path.join(tmp, `${kind}${edit ? '-edited' : ''}`);
  mkdirSync(dir, { recursive: true });
  const cfg = tinyConfig(kind) as any;
  edit?.(cfg);
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: cfg }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tinyModel(kind).stateDict());
  return dir;
}

function png(name: string, width: number, height: number, channels: 1 | 3 | 4, f: (i: number, c: number) => number): string {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = f(i, c);
  const file = path.join(tmp, name);
  writePng(file, { width, height, channels, data } as Image);
  return file;
}

const text = modelDir('text'), inpaint = modelDir('inpainting'), superres = modelDir('superres'), semantic = modelDir('semantic');
const wide = modelDir('text', (c) => (c.params.unet_config.params.model_channels = 64));
const vocab = tinyVocab();
const rgb64 = png('rgb64.png', 64, 64, 3, (i) => i % 256), rgb60 = png('rgb60.png', 60, 60, 3, (i) => i % 256);
const mask32 = png('mask32.png', 32, 32, 1, () => 255), mask64 = png('mask64.png', 64, 64, 1, (i) => (i % 64 < 32 ? 255 : 0));
const alpha64 = png('alpha64.png', 64, 64, 4, (i, c) => (c === 3 ? (i < 100 ? 0 : 255) : 200));
const segColour = png('seg-colour.png', 64, 64, 3, (_, c) => (c === 0 ? 3 : 7)), seg200 = png('seg200.png', 64, 64, 1, () => 200);
const gray30 = png('gray30.png', 30, 30, 1, () => 128), gray32 = png('gray32.png', 32, 32, 1, () => 128);
const lr20 = png('lr20.png', 20, 20, 3, () => 128);
const notImage = path.join(tmp, 'not-an-image.png');
writeFileSync(notImage, 'hello, not a PNG');
const fox80 = Array(80).fill('fox').join(' ');
const file = path.join(tmp, 'a-file');
writeFileSync(file, 'x');
const ckpt = path.join(text, 'model.safetensors');

const S = 'ldm sample: ';
/** [arguments, the whole output]; `-o out` is added to every case without --out. */
const SAMPLE: [string[], string][] = [
  [['--class', '11'], `${S}--class: class 11 is outside this model's classes 0…10`],
  [['--class', '-1'], `${S}--class: class -1 is outside this model's classes 0…10`],
  [['--class', '3.5'], `${S}--class expects integer labels, got "3.5"`],
  [['--class', 'seven'], `${S}--class expects integer labels, got "seven"`],
  [['--class', '3', '--uncond-class', '12'], `${S}--uncond-class: unconditional class 12 is outside this model's classes 0…10`],
  [['--class', '--n', '2'], `${S}--class needs a value (got the option --n)\n(ldm sample --help lists every option)`],
  [['--class', '3', '--scale', 'abc'], `${S}--scale expects a number, got "abc"`],
  [['--class', '3', '--scale', 'Infinity'], `${S}--scale expects a number, got "Infinity"`],
  [['--class', '3', '--strength', '0.5'], `${S}--strength: strength applies to img2img: give an initial image`],
  [['--class', '3', '--steps', '0'], `${S}--steps: the number of steps must be an integer ≥ 1, got 0`],
  [['--class', '3', '--steps', '2.5'], `${S}--steps expects an integer, got "2.5"`],
  [['--class', '3', '--steps', '27'], `${S}--steps: DDIM: 27 steps would use timestep 1000 (stride 37 + 1 offset), past the last of the model's 1000 timesteps; the original code fails there too. Step counts that work near 27: 26 or 28 (any count whose stride 1000//S does not divide 999 works, e.g. 10, 20, 25, 50, 100, 200, 250).`],
  [['--class', '3', '--steps', '1001'], `${S}--steps: DDIM: 1001 steps is more than the model's 1000 diffusion timesteps`],
  [['--class', '3', '--sampler', 'dpm++', '--steps', '1'], `${S}--steps: DPM-Solver++(2M): needs at least 2 steps, got 1`],
  [['--class', '3', '--sampler', 'ddpm', '--steps', '10'], `${S}--steps does not apply to the ddpm sampler (ancestral sampling runs every timestep); for fewer steps use --sampler ddim --eta 1`],
  [['--class', '3', '--eta', '-1'], `${S}--eta: eta must be a number ≥ 0, got -1`],
  [['--class', '3', '--eta', '2'], `${S}--eta: DDIM eta must be in [0, 1] (1 adds the noise of ancestral DDPM sampling; more than the schedule holds gives NaN), got 2`],
  [['--class', '3', '--sampler', 'plms', '--eta', '0.5'], `${S}--eta: eta does not apply to the plms sampler (it is read by ddim, euler-a, dpm++sde)`],
  [['--class', '3', '--schedule', 'karras'], `${S}--schedule: the ddim sampler takes no noise schedule (the k-diffusion samplers do: euler, euler-a, heun, dpm++2m, dpm++sde)`],
  [['--class', '3', '--n', '-2'], `${S}--n: the number of images per class, prompt or input must be an integer ≥ 1, got -2`],
  [['--class', '3', '--n', '0'], `${S}--n: the number of images per class, prompt or input must be an integer ≥ 1, got 0`],
  [['--class', '3', '--seed', '-1'], `${S}--seed: the seed must be a non-negative integer, got -1`],
  [['--class', '3', '--weight-cache', '-1'], `${S}--weight-cache takes megabytes ≥ 0, got -1`],
  [['--class', '3', '--batch-size', '-1'], `${S}--batch-size: the batch size (0 = all at once) must be an integer ≥ 0, got -1`],
  [['--class', '3', '--H', '30'], `${S}--H: image height 30 is not divisible by the first stage's downsampling factor f = 4`],
  [['--class', '3', '--H', '36'], `${S}--H: image height 36 must be a multiple of 8 (f = 4 × the UNet's 2× downsampling); try 40`],
  [['--class', '3', '--W', '0'], `${S}--W: image width must be a positive integer, got 0`],
  [['--class', '3', '--H', '100000', '--W', '100000'], `${S}--H: one 100000×100000 image needs about 21.0 TiB (estimate: weights 9 MiB, first stage 21.0 TiB, results 41.9 GiB, runtime and buffer pool 712 MiB), more than LDM_MEMORY_MB = 4096 (4.0 GiB); choose a smaller size`],
  [['--class', '3', '--H', '100000'], `${S}--H: one 32×100000 image needs about 7.6 GiB (estimate: weights 9 MiB, first stage 6.9 GiB, results 14 MiB, runtime and buffer pool 712 MiB), more than LDM_MEMORY_MB = 4096 (4.0 GiB); choose a smaller size`],
  [['--class', '3', '--n', '2000'], `${S}--batch-size: denoising 2000 images of 32×32 at once needs about 5.1 GiB (estimate: weights 9 MiB, first stage 4.4 GiB, results 9 MiB, runtime and buffer pool 712 MiB), more than LDM_MEMORY_MB = 4096 (4.0 GiB); a batch size of 1000 fits (the same images, 1000 at a time)`],
  [['--class', '3', '--n', '2000', '--weight-cache', '64'], `${S}--batch-size: denoising 2000 images of 32×32 at once needs about 5.1 GiB (estimate: weights 9 MiB, packed weights 38 MiB, first stage 4.4 GiB, results 9 MiB, runtime and buffer pool 712 MiB), more than LDM_MEMORY_MB = 4096 (4.0 GiB); a batch size of 1000 fits (the same images, 1000 at a time)`],
  [['--class', '3', '--image', rgb64], `${S}--image is for inpainting or text-guided inpainting models, but this is a class-conditional model (use --class)`],
  [['--class', '3', '--ema'], `${S}--ckpt: ${path.join(modelsDir(), 'mnist', 'model.safetensors')} has no EMA weights (model_ema.*)`],
  [['--class', '3', '--init-image', gray30], `${S}--init-image: the initial image is 30×30 pixels; its height must be a multiple of 8 (f = 4 × the UNet's 2× downsampling), e.g. 32`],
  [['--class', '3', '--init-image', gray32, '--strength', '1.5'], `${S}--strength: strength must be in (0, 1], got 1.5`],
  [['--class', '3', '--mask', gray32], `${S}--mask: a class-conditional model inpaints through img2img: give the initial image the mask applies to`],
  [['--class', '3', '--init-image', gray32, '--mask', rgb64], `${S}--mask: the mask is 64×64 but the initial image is 32×32`],
  [['--class', '3', '--init-image', gray32, '--H', '32'], `${S}--H: the image size does not apply to img2img (the initial image's 32×32 is used)`],
  [['--class', '3', '--init-image', alpha64], `${S}--init-image: the initial image has transparent pixels (alpha 0 at (0, 0)); the model reads only its colours, so what lies under them would decide the result: flatten it onto a background first`],
  [['--class', '3', '--init-image', path.join(tmp, 'missing.png')], `${S}--init-image: ${path.join(tmp, 'missing.png')} does not exist`],
  [['--class', '3', '--init-image', notImage], `${S}--init-image: ${notImage}: unsupported image format (PNG and JPEG are supported)`],
  [['--class', '3', '--x-t', rgb64], `${S}--x-t: ${rgb64}: header length 727905341920923785 (bytes 0–7) exceeds the file size 229 (truncated?)`],
  [['--class', '3', '--out', file], `${S}--out: ${file} is a file, not a folder`],
  [['--class', '3', '--out', path.join(file, 'sub')], `${S}--out: cannot create ${path.join(file, 'sub')}: ${file} is a file, not a folder`],
  [['--class', '3', '--name', 'a/b'], `${S}--name: a file name prefix without / or \\, got "a/b"`],
  [['--class', '3', '--save-latents', path.join(file, 'z.safetensors')], `${S}--save-latents: ${file} is a file, not a folder`],
  // text-to-image
  [[text, '--prompt', fox80, '--vocab', vocab], `${S}--prompt: "fox fox fox fox fox fox fox fox fox f…" is 80 tokens; this model's text encoder reads 75 (77 with its start and end tokens): shorten it by 5 tokens`],
  [[text, '--prompt', 'a fox', '--negative-prompt', fox80, '--vocab', vocab], `${S}--negative-prompt: "fox fox fox fox fox fox fox fox fox f…" is 80 tokens; this model's text encoder reads 75 (77 with its start and end tokens): shorten it by 5 tokens`],
  [[text, '--prompt', 'a fox', '--negative-prompt', 'x', '--scale', '1', '--vocab', vocab], `${S}--negative-prompt: a negative prompt acts through classifier-free guidance: give a scale other than 1`],
  [[text, '--prompt', 'a fox', '--vocab', notImage], `${S}--vocab: ${notImage}: WordPieceTokenizer: vocabulary has no [PAD] token`],
  [[text, '--prompt', 'a fox'], `${S}--vocab: text prompts need the bert-base-uncased vocab.txt (one token per line)`],
  // inpainting
  [[inpaint, '--image', rgb64, '--mask', mask32], `${S}--mask: the mask is 32×32 but the image is 64×64`],
  [[inpaint, '--image', rgb60, '--mask', rgb60], `${S}--image: the image is 60×60 pixels; its height must be a multiple of 32 (f = 4 × the UNet's 8× downsampling), e.g. 64`],
  [[inpaint, '--image', alpha64, '--mask', mask64], `${S}--image: the image has transparent pixels (alpha 0 at (0, 0)); the model reads only its colours, so what lies under them would decide the result: flatten it onto a background first`],
  [[inpaint, '--image', rgb64, '--mask', alpha64], `${S}--mask: the mask has transparent pixels (alpha 0 at (0, 0)); the model reads only its colours, so what lies under them would decide the result: flatten it onto a background first`],
  [[inpaint, '--image', rgb64], `${S}--mask: this is an inpainting model: give the image and a mask (white = the region to fill)`],
  [[inpaint, '--image', rgb64, '--mask', mask64, '--scale', '3'], `${S}--scale: classifier-free guidance needs a conditioning to leave out; an inpainting model has none (scale 1 only)`],
  // super-resolution, semantic synthesis
  [[superres, '--lr-image', lr20], `${S}--lr-image: the low-resolution image is 20×20 pixels; its height must be a multiple of 8 (its ×4 output a multiple of 32: f = 4 × the UNet's 8× downsampling), e.g. 24`],
  [[superres, '--lr-image', alpha64], `${S}--lr-image: the low-resolution image has transparent pixels (alpha 0 at (0, 0)); the model reads only its colours, so what lies under them would decide the result: flatten it onto a background first`],
  [[semantic, '--segmentation', segColour], `${S}--segmentation: a label map holds one class index per pixel (a gray picture), but pixel (0, 0) is RGBA (3, 7, 7, 255); a colour-coded or palette picture must be saved as its indices first`],
  [[semantic, '--segmentation', seg200], `${S}--segmentation: label 200 at pixel (0, 0) is outside this model's 182 classes (0…181, 255 = unlabelled)`],
];

test('ldm sample: every bad input is refused before the weights load, exit 2, the flag named, nothing written', async () => {
  const bound = process.env.LDM_MEMORY_MB;
  process.env.LDM_MEMORY_MB = '4096'; // the memory messages then read the same on every machine
  try {
    const before = readdirSync(tmp).sort();
    for (const [args, want] of SAMPLE) {
      const t0 = Date.now();
      const r = await ldm(['sample', ...args, ...(args.includes('--out') ? [] : ['-o', out])]);
      assert.equal(r.out, `${want}\n`, `ldm sample ${args.join(' ')}`);
      assert.equal(r.code, 2, `exit status of ldm sample ${args.join(' ')}`);
      assert.ok(Date.now() - t0 < 10_000, `ldm sample ${args.join(' ')} took ${Date.now() - t0} ms`);
      assert.ok(!existsSync(out), `ldm sample ${args.join(' ')} created ${out}`);
      assert.deepEqual(readdirSync(tmp).sort(), before, `ldm sample ${args.join(' ')} left a file behind`);
    }
  } finally {
    if (bound === undefined) delete process.env.LDM_MEMORY_MB;
    else process.env.LDM_MEMORY_MB = bound;
  }
});

test('ldm sample: a config whose shapes disagree with the checkpoint names the keys, both shapes and the config field', async () => {
  const r = await ldm(['sample', wide, '--prompt', 'a fox', '--vocab', vocab, '-o', out]);
  assert.equal(r.code, 2);
  const lines = r.out.trimEnd().split('\n');
  assert.equal(lines[0], `${S}--ckpt: cannot load model.safetensors:`);
  assert.ok(lines.includes('  shape mismatch at model.diffusion_model.input_blocks.0.0.weight: model has [64,4,3,3], file has [32,4,3,3]'), r.out);
  assert.equal(lines.at(-2), `  with the config ${path.join(wide, 'config.yaml')}; change the config (or use the file made for it):`);
  assert.equal(lines.at(-1), '    model.params.unet_config.params.model_channels is 64 in the config, 32 in the file (model.diffusion_model.input_blocks.0.0.weight dimension 0)');
  assert.ok(!existsSync(out));
  // another model's config for these weights: each differing field is named
  const r2 = await ldm(['sample', '--ckpt', ckpt, '--config', path.join(inpaint, 'config.yaml'), '-o', out]);
  assert.equal(r2.code, 2);
  for (const hint of [
    'model.params.unet_config.params.in_channels is 7 in the config, 4 in the file (model.diffusion_model.input_blocks.0.0.weight dimension 1)',
    'model.params.unet_config.params.out_channels is 3 in the config, 4 in the file (model.diffusion_model.out.2.weight dimension 0)',
    'model.params.first_stage_config.params.embed_dim is 3 in the config, 4 in the file (first_stage_model.post_quant_conv.weight dimension 1)',
  ]) assert.ok(r2.out.includes(`    ${hint}\n`), r2.out);
});

test('ldm sample --out where nothing can be written: refused at once (no hang under /proc), nothing created', async () => {
  for (const dir of ['/proc/x', '/sys/x']) {
    if (!existsSync(path.dirname(dir))) continue;
    const t0 = Date.now();
    const r = await ldm(['sample', '--class', '3', '--out', dir]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, new RegExp(`^${S}--out: (no permission to write in|.* is on a read-only file system|.* does not take new files)`), r.out);
    assert.ok(r.out.includes(`${path.dirname(dir)} (to create ${dir} in)`), r.out);
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(!existsSync(dir));
  }
});

test('ldm sample --out in a read-only folder: refused before any work', async (t) => {
  if (process.getuid?.() === 0) return t.skip('root writes into read-only folders: the case needs another user');
  const ro = path.join(tmp, 'read-only');
  mkdirSync(ro, { mode: 0o555 });
  const r = await ldm(['sample', '--class', '3', '--out', path.join(ro, 'x')]);
  assert.equal(r.out, `${S}--out: no permission to write in ${ro} (to create ${path.join(ro, 'x')} in)\n`);
  assert.equal(r.code, 2);
});

test('ldm convert: a missing output folder, a missing input, an output that is a folder: exit 2 before reading anything', async () => {
  const weights = path.join(tmp, 'w.safetensors');
  copyFileSync(ckpt, weights);
  const C = 'ldm convert: ';
  const cases: [string[], string][] = [
    [[weights, path.join(tmp, 'missing', 'x.safetensors')], `${C}cannot write ${path.join(tmp, 'missing', 'x.safetensors')}: folder ${path.join(tmp, 'missing')} does not exist`],
    [[path.join(tmp, 'nope.ckpt'), path.join(tmp, 'x.safetensors')], `${C}${path.join(tmp, 'nope.ckpt')} does not exist`],
    [[weights, tmp], `${C}${tmp} is a folder; give the name of the file to write`],
    [[weights, weights], `${C}${weights} is the input itself; give another name`],
    [[weights, path.join(file, 'x.safetensors')], `${C}cannot write ${path.join(file, 'x.safetensors')}: ${file} is a file, not a folder`],
    [['--allow-global'], `${C}--allow-global needs a module.Name (e.g. numpy.core.multiarray.scalar), got nothing`],
    [['--ema', '--allow-global', 'a.B', weights, path.join(tmp, 'y.safetensors')], `${C}--allow-global cannot be combined with --ema / --half`],
  ];
  const before = readdirSync(tmp).sort();
  for (const [args, want] of cases) {
    const r = await ldm(['convert', ...args]);
    assert.equal(r.out, `${want}\n`, `ldm convert ${args.join(' ')}`);
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(tmp).sort(), before);
  }
});
