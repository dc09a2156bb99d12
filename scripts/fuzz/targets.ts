// What each fuzzed format goes through (the product's own entry points), and how a thrown error is judged.

import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { convertToSafetensors, readCheckpoint } from '../../src/io/ckpt.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readImage } from '../../src/io/image.js';
import { buildFromConfigFile } from '../../src/loader/targets.js';
import * as T from '../../src/engine/index.js';

export const FORMATS = ['safetensors', 'ckpt', 'yaml', 'png', 'jpeg'] as const;
export type Format = (typeof FORMATS)[number];
export const EXT: Record<Format, string> = { safetensors: 'safetensors', ckpt: 'ckpt', yaml: 'yaml', png: 'png', jpeg: 'jpg' };

export type Outcome = 'clean' | 'loaded' | 'crash' | 'hang' | 'memory' | 'unhelpful' | 'inconsistent' | 'executed';
export const OUTCOMES: Outcome[] = ['clean', 'loaded', 'crash', 'hang', 'memory', 'unhelpful', 'inconsistent', 'executed'];

export interface Result {
  outcome: Outcome;
  message?: string;
}

/** Internal messages that tell the user nothing about their file. */
const UNHELPFUL = /Cannot read propert|is not iterable|is not a function|Invalid array length|Invalid typed array length|\[object Object\]|Maximum call stack|is not defined|undefined is not|Cannot convert|out of memory|Array buffer allocation failed|Offset is outside the bounds|out of range of|Invalid string length|Converting circular structure|unexpected marker: |marker was not found|JpegImage|Unknown version|Invalid value used|Invalid count value|Cannot mix BigInt/;

/** A clean error: a non-internal Error type whose message names the file and is not an internal message. */
export function judge(e: unknown, file: string): Result {
  if (!(e instanceof Error)) return { outcome: 'unhelpful', message: `non-Error thrown: ${String(e)}` };
  const msg = e.message;
  const internal = e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError;
  if (internal || !msg.includes(file) || UNHELPFUL.test(msg)) return { outcome: 'unhelpful', message: `${e.constructor.name}: ${msg.slice(0, 400)}` };
  return { outcome: 'clean', message: msg.slice(0, 400) };
}

function sameTensor(a: T.Tensor, b: T.Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const x = T.contiguousData(a), y = T.contiguousData(b);
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

/** Run one input; throws only through `judge` (errors are caught here). `work` is a scratch folder. */
export function runInput(format: Format, file: string, work: string): Result {
  try {
    if (format === 'safetensors') {
      // The eager reader and the lazy checkpoint reader must agree.
      let eager: Map<string, T.Tensor> | Error;
      try { eager = readSafetensors(file).tensors; } catch (e) { eager = e as Error; }
      let lazy: Map<string, T.Tensor> | Error;
      try {
        const c = readCheckpoint(file);
        try { lazy = new Map([...c.stateDict].map(([k, t]) => [k, t.load()])); } finally { c.close(); }
      } catch (e) { lazy = e as Error; }
      if (eager instanceof Error || lazy instanceof Error) {
        if (!(eager instanceof Error) || !(lazy instanceof Error)) {
          return { outcome: 'inconsistent', message: `eager ${eager instanceof Error ? eager.message : 'loaded'} / lazy ${lazy instanceof Error ? lazy.message : 'loaded'}`.slice(0, 400) };
        }
        const a = judge(eager, file), b = judge(lazy, file);
        return a.outcome !== 'clean' ? a : b;
      }
      if (eager.size !== lazy.size || [...eager].some(([k, t]) => !lazy.has(k) || !sameTensor(t, lazy.get(k)!))) return { outcome: 'inconsistent', message: 'eager and lazy readers load different tensors' };
      return { outcome: 'loaded' };
    }
    if (format === 'ckpt') {
      const out = path.join(work, 'out.safetensors');
      rmSync(out, { force: true });
      let loaded: Map<string, T.Tensor>;
      try {
        const c = readCheckpoint(file);
        try { loaded = new Map([...c.stateDict].map(([k, t]) => [k, t.load()])); } finally { c.close(); }
      } catch (e) {
        // What does not load must not convert either, and a failed convert leaves nothing behind.
        let converted = false;
        try { convertToSafetensors(file, out); converted = true; } catch { /* expected */ }
        const left = leftovers(work);
        rmSync(out, { force: true });
        if (converted) return { outcome: 'inconsistent', message: `convert wrote a file from a checkpoint that does not load (${(e as Error).message})`.slice(0, 400) };
        if (left.length) return { outcome: 'inconsistent', message: `failed convert left ${left.join(', ')}` };
        return judge(e, file);
      }
      try {
        convertToSafetensors(file, out);
      } catch (e) {
        const left = readdirSync(work).filter((f) => f.startsWith('out.safetensors'));
        if (left.length) return { outcome: 'inconsistent', message: `failed convert left ${left.join(', ')}` };
        return { outcome: 'inconsistent', message: `loaded but convert failed: ${(e as Error).message}`.slice(0, 400) };
      }
      const back = readSafetensors(out).tensors;
      rmSync(out, { force: true });
      if (back.size !== loaded.size || [...loaded].some(([k, t]) => !back.has(k) || !sameTensor(t, back.get(k)!))) return { outcome: 'inconsistent', message: 'converted file differs from the checkpoint' };
      return { outcome: 'loaded' };
    }
    if (format === 'yaml') {
      buildFromConfigFile(file, { meta: true });
      return { outcome: 'loaded' };
    }
    const img = readImage(file);
    if (img.data.length !== img.width * img.height * 4) return { outcome: 'inconsistent', message: `decoded ${img.data.length} bytes for ${img.width}×${img.height}` };
    return { outcome: 'loaded' };
  } catch (e) {
    return judge(e, file);
  }
}

/** A convert that failed must leave nothing under the output name. */
export function leftovers(work: string): string[] {
  return existsSync(work) ? readdirSync(work).filter((f) => f.startsWith('out.safetensors')) : [];
}
