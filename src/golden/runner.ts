// The golden runner: for one fixture folder, run what case.json's `kind` says and compare every output
// with io.safetensors (relative L2 error ‖out − ref‖ / ‖ref‖ against a tolerance, or exact equality).
// When model.ckpt is present it is also checked to hold exactly the tensors of weights.safetensors.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as T from '../engine/index.js';
import { readCheckpoint } from '../io/ckpt.js';
import { readSafetensors } from '../io/safetensors.js';
import { KINDS, knownKinds } from './kinds/index.js';
import type { GoldenCase, GoldenOutput, GoldenResult } from './types.js';

export const DEFAULT_TOL = 1e-4;

export interface RunOptions {
  /** Load weights from model.ckpt instead of weights.safetensors (where the folder has one). */
  fromCkpt?: boolean;
}

/** Read a fixture folder (case.json, io.safetensors, config.yaml, weights). */
export function openCase(dir: string, opts: RunOptions = {}): GoldenCase {
  const abs = path.resolve(dir);
  const caseFile = path.join(abs, 'case.json');
  if (!existsSync(caseFile)) throw new Error(`${abs}: no case.json (not a golden folder)`);
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(readFileSync(caseFile, 'utf8'));
  } catch (e) {
    throw new Error(`${caseFile}: ${(e as Error).message}`);
  }
  if (typeof spec.kind !== 'string') throw new Error(`${caseFile}: no "kind" string`);
  const ioFile = path.join(abs, 'io.safetensors');
  if (!existsSync(ioFile)) throw new Error(`${abs}: no io.safetensors`);
  const opt = (f: string) => (existsSync(path.join(abs, f)) ? path.join(abs, f) : null);
  const ckptPath = opt('model.ckpt');
  const weights = opt('weights.safetensors');
  return {
    dir: abs,
    name: path.basename(abs),
    kind: spec.kind,
    spec,
    io: readSafetensors(ioFile).tensors,
    configPath: opt('config.yaml'),
    weightsPath: opts.fromCkpt && ckptPath ? ckptPath : weights ?? ckptPath,
    ckptPath,
  };
}

/** Relative L2 error ‖a − e‖ / ‖e‖ (absolute ‖a − e‖ when e is all zeros), in float64. */
export function relL2(actual: T.Tensor, expected: T.Tensor): number {
  const a = T.contiguousData(actual), e = T.contiguousData(expected);
  let num = 0, den = 0;
  for (let i = 0; i < e.length; i++) {
    const ev = Number(e[i]), d = Number(a[i]) - ev;
    num += d * d;
    den += ev * ev;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** Compare one output with its reference. */
export function compareOutput(c: GoldenCase, o: GoldenOutput): GoldenResult {
  const expected = o.expected ?? c.io.get(o.name);
  const exact = !!o.exact;
  const tol = exact ? 0 : o.tol ?? DEFAULT_TOL;
  const base = { case: c.name, output: o.name, tol, exact };
  if (!expected) return { ...base, error: Infinity, pass: false, note: `io.safetensors has no ${o.name}` };
  if (!T.sameShape(o.actual.shape, expected.shape)) {
    return { ...base, error: Infinity, pass: false, note: `shape [${o.actual.shape}] vs expected [${expected.shape}]` };
  }
  if (exact) {
    const a = T.contiguousData(o.actual), e = T.contiguousData(expected);
    let bad = 0;
    for (let i = 0; i < e.length; i++) if (Number(a[i]) !== Number(e[i])) bad++;
    return { ...base, error: e.length ? bad / e.length : 0, pass: bad === 0, note: `${bad}/${e.length} differ` };
  }
  const err = relL2(o.actual, expected);
  return { ...base, error: err, pass: Number.isFinite(err) && err <= tol };
}

/** model.ckpt must hold the same tensors as weights.safetensors, bit for bit. */
export function checkCkptMatchesWeights(c: GoldenCase): GoldenResult {
  const base = { case: c.name, output: 'model.ckpt', tol: 0, exact: true };
  const wPath = path.join(c.dir, 'weights.safetensors');
  if (!c.ckptPath || !existsSync(wPath)) return { ...base, error: 0, pass: true, note: 'nothing to compare' };
  const ck = readCheckpoint(c.ckptPath), w = readCheckpoint(wPath);
  try {
    let bad = 0;
    const diffs: string[] = [];
    for (const [k, t] of w.stateDict) {
      const u = ck.stateDict.get(k);
      if (!u || u.fileDtype !== t.fileDtype || !T.sameShape(u.shape, t.shape) || !Buffer.from(u.rawBytes()).equals(Buffer.from(t.rawBytes()))) {
        bad++;
        if (diffs.length < 3) diffs.push(k);
      }
    }
    const extra = [...ck.stateDict.keys()].filter((k) => !w.stateDict.has(k));
    bad += extra.length;
    const n = w.stateDict.size;
    const note = `${n - bad + extra.length}/${n} tensors identical${extra.length ? `, ${extra.length} extra` : ''}${diffs.length ? ` (differ: ${diffs.join(', ')})` : ''}, global_step ${ck.globalStep ?? 'absent'}`;
    return { ...base, error: n ? bad / n : 0, pass: bad === 0, note };
  } finally {
    ck.close();
    w.close();
  }
}

/** Run one folder: returns one result per output (plus the model.ckpt check where present). */
export async function runCase(dir: string, opts: RunOptions = {}): Promise<GoldenResult[]> {
  const c = openCase(dir, opts);
  const kind = KINDS[c.kind];
  if (!kind) throw new Error(`${c.dir}: unknown golden kind "${c.kind}" (known kinds: ${knownKinds().join(', ')})`);
  const outputs = await kind.run(c);
  const results = outputs.map((o) => compareOutput(c, o));
  if (c.ckptPath) results.push(checkCkptMatchesWeights(c));
  return results;
}

export function formatResult(r: GoldenResult): string {
  const err = r.exact ? (r.note ?? '') : `rel_l2=${Number.isFinite(r.error) ? r.error.toExponential(2) : 'inf'} tol=${r.tol.toExponential(0)}${r.note ? ` (${r.note})` : ''}`;
  return `${r.pass ? 'PASS' : 'FAIL'}  ${r.case}  ${r.output}  ${r.exact ? `exact ${err}` : err}`;
}
