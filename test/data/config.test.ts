import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { readYaml } from '../../src/io/config.js';
import { writePng } from '../../src/io/image.js';
import { Subset, buildDataset, parseDataConfig } from '../../src/data/index.js';

const CONFIGS = path.resolve('../shared/reference/configs/configs');

test('data section with the MNIST targets: batch size, the 9,000 / 1,000 split, disjoint', () => {
  const doc = parse(`
data:
  target: main.DataModuleFromConfig
  params:
    batch_size: 64
    num_workers: 2
    wrap: false
    train:
      target: ldm.data.mnist.MNISTTrain
    validation:
      target: ldm.data.mnist.MNISTValidation
      params: { held_out: 1000, split_seed: 0 }
`);
  const d = parseDataConfig(doc, 'mnist.yaml');
  assert.equal(d.batchSize, 64);
  assert.equal(d.numWorkers, 2);
  assert.equal(d.train.length, 9000);
  assert.equal(d.validation!.length, 1000);
  assert.equal(d.test, null);
  assert.equal(d.train.size, 32);
  assert.equal(d.train.numClasses, 10);
  const tr = new Set((d.train as Subset).indices), va = (d.validation as Subset).indices;
  assert.ok(va.every((i) => !tr.has(i)));
  assert.equal(buildDataset({ target: 'ldm.data.mnist.MNIST', params: { channels: 3 } }, 'x').channels, 3);
});

test('config errors: unknown parameter with its path, missing train, wrong data target', () => {
  const base = (train: unknown) => ({ data: { target: 'main.DataModuleFromConfig', params: { batch_size: 4, train } } });
  assert.throws(() => parseDataConfig(base({ target: 'ldm.data.mnist.MNISTTrain', params: { sise: 32 } }), 'c.yaml'), /c\.yaml: unknown parameter data\.params\.train\.params\.sise for ldm\.data\.mnist\.MNISTTrain/);
  assert.throws(() => parseDataConfig(base(undefined), 'c.yaml'), /data\.params\.train: required dataset is missing/);
  assert.throws(() => parseDataConfig(base({ target: 'ldm.data.mnist.Nope' }), 'c.yaml'), /data\.params\.train\.target: unknown dataset target ldm\.data\.mnist\.Nope \(known: ldm\.data\.mnist\.MNIST,/);
  assert.throws(() => parseDataConfig({ model: {} }, 'c.yaml'), /c\.yaml: no data section/);
  assert.throws(() => parseDataConfig(base({ target: 'ldm.data.mnist.MNISTTrain', params: { held_out: 10000 } }), 'c.yaml'), /held_out: splitDataset: cannot hold out 10000 of 10000/);
  assert.throws(() => parseDataConfig(base({ target: 'ldm.data.imagefolder.ImageFolder', params: { root: '/nonexistent/x', size: 8 } }), 'c.yaml'), /data\.params\.train\.params: image folder \/nonexistent\/x does not exist/);
});

test('official configs: datasets that need downloads are refused with the ImageFolder YAML to use instead', { skip: !existsSync(CONFIGS) && 'reference configs absent' }, () => {
  const cin = readYaml(path.join(CONFIGS, 'latent-diffusion/cin-ldm-vq-f8.yaml'));
  assert.throws(() => parseDataConfig(cin, 'cin-ldm-vq-f8.yaml'), (e: Error) => {
    assert.match(e.message, /cin-ldm-vq-f8\.yaml: data\.params\.train\.target: ldm\.data\.imagenet\.ImageNetTrain needs ImageNet/);
    assert.match(e.message, /    train:\n      target: ldm\.data\.imagefolder\.ImageFolder\n      params:\n        root: \/path\/to\/your\/images   # one sub-folder per class\n        size: 256\n        labels: folders\n        random_crop: true/);
    return true;
  });
  const churches = readYaml(path.join(CONFIGS, 'latent-diffusion/lsun_churches-ldm-kl-8.yaml'));
  assert.throws(() => parseDataConfig(churches, 'lsun.yaml'), (e: Error) => /LSUN/.test(e.message) && !/labels: folders/.test(e.message));
  const ae = readYaml(path.join(CONFIGS, 'autoencoder/autoencoder_kl_32x32x4.yaml'));
  assert.throws(() => parseDataConfig(ae, 'ae.yaml'), /ImageNetSRTrain needs ImageNet \(ILSVRC2012\) with super-resolution degradations/);
  // The train node replaced by an image folder, the rest of the official file unchanged.
  const root = mkdtempSync(path.join(tmpdir(), 'ldm-cfg-'));
  for (const c of ['a', 'b']) {
    mkdirSync(path.join(root, c));
    for (let k = 0; k < 10; k++) writePng(path.join(root, c, `${k}.png`), { width: 12, height: 10, channels: 3, data: new Uint8Array(360).fill(k * 20) });
  }
  const dataParams = (cin.data as { params: Record<string, unknown> }).params;
  dataParams.train = { target: 'ldm.data.imagefolder.ImageFolderTrain', params: { root, size: 8, labels: 'folders', random_crop: true, held_out: 4 } };
  dataParams.validation = { target: 'ldm.data.imagefolder.ImageFolderValidation', params: { root, size: 8, labels: 'folders', held_out: 4 } };
  const d = parseDataConfig(cin, 'cin.yaml');
  assert.equal(d.batchSize, 64);
  assert.equal(d.train.length, 16);
  assert.equal(d.validation!.length, 4);
  assert.equal(d.train.numClasses, 2);
  assert.equal(d.train.augments, true);
  assert.equal(d.validation!.augments, false, 'validation: no flip by default');
  assert.equal(d.train.get(0).image.length, 3 * 8 * 8);
});

test('taming.data.custom.CustomTrain reads its list of image paths', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ldm-custom-'));
  const files = [0, 1, 2].map((k) => path.join(root, `${k}.png`));
  files.forEach((f, k) => writePng(f, { width: 4, height: 6, channels: 3, data: new Uint8Array(72).fill(k * 100) }));
  writeFileSync(path.join(root, 'train.txt'), files.join('\n') + '\n');
  const ds = buildDataset({ target: 'taming.data.custom.CustomTrain', params: { size: 4, training_images_list_file: path.join(root, 'train.txt') } }, 'data.params.train');
  assert.equal(ds.length, 3);
  assert.deepEqual([...ds.get(2).image.slice(0, 3)], [200, 200, 200].map((b) => Math.fround(b / 127.5 - 1)));
  assert.throws(() => buildDataset({ target: 'taming.data.custom.CustomTest', params: { size: 4, test_images_list_file: path.join(root, 'nope.txt') } }, 'data.params.test'), /data\.params\.test\.params\.test_images_list_file: cannot read/);
});

test('ldm.data.lsun targets read data/lsun/ lists from the working directory: center square, then resize, then flip', () => {
  const cwd = process.cwd();
  const work = mkdtempSync(path.join(tmpdir(), 'ldm-lsun-'));
  try {
    process.chdir(work);
    const node = { target: 'ldm.data.lsun.LSUNChurchesTrain', params: { size: 4 } };
    assert.throws(() => buildDataset(node, 'data.params.train'), /LSUNChurchesTrain reads data\/lsun\/church_outdoor_train\.txt \(image paths relative to data\/lsun\/churches\)/);
    assert.throws(() => buildDataset({ target: 'ldm.data.lsun.LSUNChurchesTrain', params: {} }, 'data.params.train'), /params\.size: give a size/);
    mkdirSync('data/lsun/churches/x', { recursive: true });
    // 6 wide × 4 high: column x has value 40·x in every channel.
    const d = new Uint8Array(6 * 4 * 3);
    for (let i = 0; i < 24; i++) d.fill((i % 6) * 40, 3 * i, 3 * i + 3);
    writePng('data/lsun/churches/x/a.png', { width: 6, height: 4, channels: 3, data: d });
    writeFileSync('data/lsun/church_outdoor_train.txt', 'x/a.png\n');
    const ds = buildDataset(node, 'data.params.train');
    assert.equal(ds.length, 1);
    const cols = (img: Float32Array) => [0, 1, 2, 3].map((x) => Math.round((img[x] + 1) * 127.5));
    assert.deepEqual(cols(ds.get(0).image), [40, 80, 120, 160], 'columns 1..4 of the centered square');
    assert.deepEqual(cols(ds.get(0, { cropY: 0, cropX: 0, flip: 0.2 }).image), [160, 120, 80, 40], 'flipped (flip_p 0.5)');
    assert.deepEqual(cols(ds.get(0, { cropY: 0, cropX: 0, flip: 0.7 }).image), [40, 80, 120, 160]);
  } finally {
    process.chdir(cwd);
  }
});
