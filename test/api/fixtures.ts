// A tiny class-conditional model laid out as an embedded model (models/<name>/{config.yaml,
// model.safetensors, model.json}) in a temporary folder: random weights, 32×32 images, 10 classes + a
// "no class" label, so the registry, the CLI and the API can be tested without the shipped models.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';
import { tinyConfig } from '../tasks/helpers.js';

export function tinyDigitsConfig() {
  const c = structuredClone(tinyConfig('class')) as { params: Record<string, any> };
  c.params.image_size = 8; // latent 8×8, f = 4: 32×32 images
  c.params.unet_config.params.image_size = 8;
  c.params.cond_stage_config.params.n_classes = 11;
  return c;
}

/** Writes models/<name>/ under a new temporary folder; returns that models folder. */
export function tinyModelsDir(name = 'digits'): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ldm-models-'));
  const dir = path.join(root, name);
  mkdirSync(dir);
  const cfg = tinyDigitsConfig();
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: cfg }));
  const gen = new T.Generator(3);
  const m = instantiate<LatentDiffusion>(cfg, 'model', { gen });
  for (const [, p] of m.namedParameters()) {
    const d = p.data as Float32Array;
    if (d.every((v) => v === 0)) for (let i = 0; i < d.length; i++) d[i] = 0.05 * gen.normal();
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), m.stateDict());
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({
    description: 'tiny random-weight digits model (tests)', task: 'class', classes: 10,
    classNames: Array.from({ length: 10 }, (_, i) => String(i)), imageSize: 32, defaults: { steps: 4, scale: 3 }, default: true,
  }));
  return root;
}
