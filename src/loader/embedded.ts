// Models shipped in the package: models/<name>/{config.yaml, model.safetensors, model.json}. model.json says
// what the model can do (task, classes and their names, image size, default sampling settings); the one
// marked "default": true (else the first by name) is what `ldm sample` and `loadModel()` use when no
// model is named. LDM_MODELS_DIR points the registry at another folder of the same layout.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What an embedded model can do (its model.json). */
export interface ModelInfo {
  description: string;
  /** The sampling task (as tasks' modelTask names it). */
  task: 'unconditional' | 'class' | 'text' | 'inpainting' | 'text-inpainting' | 'superres' | 'semantic';
  /** Class-conditional models: the number of real classes (labels 0…classes−1) and their names. */
  classes?: number;
  classNames?: string[];
  /** Training image size in pixels (square). */
  imageSize: number;
  /** Sampling settings this model was tuned for (override the package defaults). */
  defaults?: { steps?: number; scale?: number; sampler?: string; eta?: number };
  /** Marks the model used when none is named. */
  default?: boolean;
  /** How it was made (the training commands), for the record. */
  trainedWith?: string[];
  /** Where and how long it trained (figures for the record). */
  trainingNote?: string;
}

export interface EmbeddedModel {
  name: string;
  dir: string;
  config: string;
  weights: string;
  info: ModelInfo;
}

/** The package's models/ folder (from src/loader or dist/loader alike), or LDM_MODELS_DIR. */
export function modelsDir(): string {
  return process.env.LDM_MODELS_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');
}

const TASKS = new Set(['unconditional', 'class', 'text', 'inpainting', 'text-inpainting', 'superres', 'semantic']);

/** Read and check a model.json; errors name the file and the key. */
export function readModelInfo(file: string): ModelInfo {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not readable JSON (${(e as Error).message})`);
  }
  const o = j as Record<string, unknown>;
  const bad = (key: string, want: string) => new Error(`${file}: "${key}" must be ${want}, got ${JSON.stringify(o[key])}`);
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${file}: expected a JSON object`);
  if (typeof o.description !== 'string') throw bad('description', 'a string');
  if (typeof o.task !== 'string' || !TASKS.has(o.task)) throw bad('task', `one of ${[...TASKS].join(', ')}`);
  if (!Number.isInteger(o.imageSize) || (o.imageSize as number) <= 0) throw bad('imageSize', 'a positive integer');
  if (o.classes !== undefined && (!Number.isInteger(o.classes) || (o.classes as number) <= 0)) throw bad('classes', 'a positive integer');
  if (o.task === 'class' && o.classes === undefined) throw bad('classes', 'a positive integer for a class-conditional model');
  if (o.classNames !== undefined) {
    if (!Array.isArray(o.classNames) || !o.classNames.every((s) => typeof s === 'string')) throw bad('classNames', 'an array of strings');
    if (o.classNames.length !== o.classes) throw bad('classNames', `${o.classes} names (one per class)`);
  }
  if (o.defaults !== undefined && (typeof o.defaults !== 'object' || o.defaults === null || Array.isArray(o.defaults))) throw bad('defaults', 'an object');
  return o as unknown as ModelInfo;
}

/** The embedded models, sorted by name (folders without model.json are not models). */
export function listModels(dir = modelsDir()): EmbeddedModel[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'model.json')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const md = path.join(dir, name);
      const info = readModelInfo(path.join(md, 'model.json'));
      for (const f of ['config.yaml', 'model.safetensors']) {
        if (!existsSync(path.join(md, f))) throw new Error(`embedded model ${name}: ${path.join(md, f)} is missing`);
      }
      return { name, dir: md, config: path.join(md, 'config.yaml'), weights: path.join(md, 'model.safetensors'), info };
    });
}

export function embeddedModel(name: string, dir = modelsDir()): EmbeddedModel | undefined {
  return listModels(dir).find((m) => m.name === name);
}

/** The model used when none is named: the one marked default, else the first by name. */
export function defaultModelName(dir = modelsDir()): string {
  const ms = listModels(dir);
  return (ms.find((m) => m.info.default) ?? ms[0])?.name ?? '';
}
