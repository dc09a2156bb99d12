// Seeds per format (valid files: the fuzzer's starting points) and the mutator each format uses.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeSafetensorsHeader } from '../../src/io/safetensors.js';
import { encodePng } from '../../src/io/image.js';
import { deflateSync } from 'node:zlib';
import { concat, type Rng } from './rng.js';
import { mutateCkpt, type Mutated } from './mut-ckpt.js';
import { mutateSafetensors } from './mut-safetensors.js';
import { mutateYaml } from './mut-yaml.js';
import { mutateJpeg, mutatePng, pngFile } from './mut-image.js';
import type { Format } from './targets.js';

const SEEDS = path.join(import.meta.dirname, 'seeds');

export interface Seed {
  name: string;
  path: string;
  bytes: Uint8Array;
}

function st(): Uint8Array {
  const f32 = new Float32Array([1, -2, 3.5, 0, 1e-3, 7]);
  const i64 = new BigInt64Array([1n, -5n, 9n]);
  const f16 = Uint8Array.of(0x00, 0x3c, 0x00, 0xc0); // 1, -2
  const u8 = Uint8Array.of(1, 2, 3, 4);
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const parts: [string, string, number[], Uint8Array][] = [['w', 'F32', [2, 3], bytes(f32)], ['i', 'I64', [3], bytes(i64)], ['h', 'F16', [2], f16], ['m.u', 'U8', [2, 2], u8], ['e', 'F32', [0, 4], new Uint8Array(0)]];
  const head = encodeSafetensorsHeader(parts.map(([n, d, s, b]) => [n, { dtype: d, shape: s, bytes: b.length }]), { format: 'pt', global_step: '3' });
  return concat(head, ...parts.map((p) => p[3]));
}

/** An Adam7-interlaced 8-bit RGB PNG written by hand (pngjs writes no interlaced files). */
function interlacedPng(w: number, h: number): Uint8Array {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((w - x0) / dx), ph = Math.ceil((h - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    for (let y = 0; y < ph; y++) {
      rows.push(0);
      for (let x = 0; x < pw; x++) rows.push((x0 + x * dx) * 20 & 255, (y0 + y * dy) * 30 & 255, 99);
    }
  }
  const hd = new Uint8Array(13);
  const dv = new DataView(hd.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h); hd.set([8, 2, 0, 0, 1], 8);
  return pngFile([{ type: 'IHDR', data: hd }, { type: 'IDAT', data: new Uint8Array(deflateSync(Uint8Array.from(rows))) }, { type: 'IEND', data: new Uint8Array(0) }]);
}

function file(name: string): Seed {
  const p = path.join(SEEDS, name);
  return { name, path: p, bytes: new Uint8Array(readFileSync(p)) };
}
const made = (name: string, bytes: Uint8Array): Seed => ({ name, path: '', bytes });

export function seeds(format: Format): Seed[] {
  switch (format) {
    case 'safetensors': return [made('tiny.safetensors', st())];
    case 'ckpt': return ['lightning.ckpt', 'bare.pt', 'legacy.ckpt'].map(file);
    case 'yaml': return ['ldm-tiny.yaml', 'autoencoder-tiny.yaml', 'vq-tiny.yaml'].map(file);
    case 'png': {
      const px = (w: number, h: number, c: 1 | 3 | 4) => ({ width: w, height: h, channels: c, data: new Uint8Array(w * h * c).map((_, i) => (i * 37) & 255) });
      return [made('rgb.png', new Uint8Array(encodePng(px(7, 5, 3), { prompt: 'a cat' }))), made('rgba.png', new Uint8Array(encodePng(px(4, 4, 4)))),
        made('gray.png', new Uint8Array(encodePng(px(9, 3, 1)))), made('interlaced.png', interlacedPng(11, 9))];
    }
    case 'jpeg': return ['progressive-rst3.jpg', 'baseline-rst2.jpg', 'progressive-gray.jpg'].map(file);
  }
}

export function mutate(format: Format, seed: Seed, r: Rng, canary: string): Mutated {
  switch (format) {
    case 'safetensors': return mutateSafetensors(seed, r);
    case 'ckpt': return mutateCkpt(seed, r, canary);
    case 'yaml': return mutateYaml(seed, r);
    case 'png': return mutatePng(seed, r);
    case 'jpeg': return mutateJpeg(seed, r);
  }
}
