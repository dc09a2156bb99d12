// Writes the held-out emoji of a config's validation split (configs/emoji/*.yaml: EmojiValidation) as PNGs,
// for `ldm eval --autoencoder RUN --data DIR`. Usage: node --import tsx scripts/emoji-held-out.ts CONFIG OUT_DIR
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { readYaml } from '../src/io/config.js';
import { writePng } from '../src/io/image.js';
import { parseDataConfig } from '../src/data/config.js';

const [config, out] = process.argv.slice(2);
if (!config || !out) {
  console.error('usage: node --import tsx scripts/emoji-held-out.ts CONFIG OUT_DIR');
  process.exit(2);
}
const data = parseDataConfig(readYaml(config) as Record<string, unknown>, config);
if (!data.validation) throw new Error(`${config}: no data.params.validation`);
mkdirSync(out, { recursive: true });
const ds = data.validation, px = ds.size * ds.size;
for (let i = 0; i < ds.length; i++) {
  const { image } = ds.get(i);
  const rgb = new Uint8Array(px * ds.channels);
  for (let c = 0; c < ds.channels; c++) for (let k = 0; k < px; k++) rgb[k * ds.channels + c] = Math.round(Math.min(Math.max((image[c * px + k] + 1) * 127.5, 0), 255));
  writePng(path.join(out, `${String(i).padStart(4, '0')}.png`), { width: ds.size, height: ds.size, channels: ds.channels as 1 | 3, data: rgb });
}
console.log(`${ds.length} held-out images (${ds.size}×${ds.size}) → ${out}`);
