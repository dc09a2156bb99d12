// Memory under load, sampling: N images (default 1,000) in one process from the embedded MNIST model through the
// library API, as `ldm sample` makes them (sample() batch by batch, each image encoded to PNG with its parameters
// and written into a numbered output folder), printing RSS after a full GC every few batches and the growth from
// after the warm-up to the end.
//
//   node --expose-gc --import tsx scripts/memory-sample.ts [--images 1000] [--batch 10] [--steps 50] [--every 50] [--warmup 100]

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodePng, loadModel, sample } from '../src/index.js';
import { OutputFolder } from '../src/cli/output.js';
import { RssLog, args } from './memory-common.js';

const o = args({ images: 1000, batch: 10, steps: 50, every: 50, warmup: 100 });
const model = loadModel();
const out = mkdtempSync(path.join(tmpdir(), 'ldm-memory-sample-'));
const folder = new OutputFolder(out, 'sample');
const log = new RssLog('images');
console.log(`sampling ${o.images} images (batches of ${o.batch}, ${o.steps} DDIM steps, classes 0…9 in turn) from ${model.name}; PNGs into ${out}`);
log.take(0);
const t0 = Date.now();
for (let done = 0; done < o.images; ) {
  const n = Math.min(o.batch, o.images - done);
  const r = sample(model, { classLabel: (done / o.batch) % 10 | 0, n, seed: 1000 + done, steps: o.steps });
  r.images.forEach((im, i) => folder.write(() => `-seed${r.perImage[i].seed}.png`, encodePng(im, { parameters: JSON.stringify(r.perImage[i]) })));
  const before = done;
  done += n;
  if (Math.floor(done / o.every) > Math.floor(before / o.every) || done === o.images) log.take(done);
}
const seconds = (Date.now() - t0) / 1000;
const files = readdirSync(out).length;
console.log(`${o.images} images in ${seconds.toFixed(1)} s (${(o.images / seconds).toFixed(2)} images/s), ${files} files written`);
log.report(o.warmup);
rmSync(out, { recursive: true, force: true });
