import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { goldenCommand } from '../../src/cli/golden.js';
import { KINDS, knownKinds } from '../../src/golden/kinds/index.js';
import { formatResult, relL2, runCase } from '../../src/golden/runner.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const golden = path.resolve(repoRoot, '../shared/golden');

function registeredCases(): string[] {
  return readdirSync(golden).sort().map((n) => path.join(golden, n))
    .filter((d) => existsSync(path.join(d, 'case.json')))
    .filter((d) => JSON.parse(readFileSync(path.join(d, 'case.json'), 'utf8')).kind in KINDS);
}

test('every golden folder whose kind is registered passes (rel. L2 within tolerance, indices exact)', async (t) => {
  if (!existsSync(golden)) {
    t.skip(`golden fixtures not found at ${golden}`);
    return;
  }
  const cases = registeredCases();
  assert.ok(cases.length >= 3, `expected at least the autoencoder_kl, vq and discriminator folders, found ${cases.length}`);
  for (const dir of cases) {
    const results = await runCase(dir);
    assert.ok(results.length > 0, `${dir}: no outputs`);
    for (const r of results) {
      t.diagnostic(formatResult(r));
      assert.ok(r.pass, formatResult(r));
    }
  }
});

test('relL2 is ‖a − e‖ / ‖e‖ (absolute when e = 0)', () => {
  assert.equal(relL2(T.tensor([3, 4]), T.tensor([0, 0])), 5);
  assert.ok(Math.abs(relL2(T.tensor([1, 1]), T.tensor([1, 2])) - 1 / Math.sqrt(5)) < 1e-12);
  assert.equal(relL2(T.tensor([1, 2], undefined, 'int32'), T.tensor([1, 2], undefined, 'int64')), 0);
});

test('a wrong output fails with its error, an unknown kind lists the known ones, the command exits 1', async (t) => {
  const src = path.join(golden, 'discriminator');
  if (!existsSync(src)) {
    t.skip(`golden fixtures not found at ${golden}`);
    return;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ldm-golden-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const bad = path.join(tmp, 'bad');
  mkdirSync(bad);
  for (const f of ['case.json', 'config.yaml', 'weights.safetensors']) copyFileSync(path.join(src, f), path.join(bad, f));
  const io = readSafetensors(path.join(src, 'io.safetensors')).tensors;
  io.set('out_eval', T.mul(io.get('out_eval')!, 1.001));
  writeSafetensors(path.join(bad, 'io.safetensors'), io);
  const results = await runCase(bad);
  const byName = Object.fromEntries(results.map((r) => [r.output, r]));
  assert.equal(byName.out_train.pass, true);
  assert.equal(byName.out_eval.pass, false);
  assert.ok(Math.abs(byName.out_eval.error - 0.001 / 1.001) < 1e-5, `error ${byName.out_eval.error}`);
  assert.match(formatResult(byName.out_eval), /^FAIL  bad  out_eval  rel_l2=9\.99e-4 tol=1e-4$/);

  const unknown = path.join(tmp, 'unknown');
  mkdirSync(unknown);
  writeFileSync(path.join(unknown, 'case.json'), JSON.stringify({ kind: 'teleport' }));
  copyFileSync(path.join(src, 'io.safetensors'), path.join(unknown, 'io.safetensors'));
  await assert.rejects(runCase(unknown), new RegExp(`unknown golden kind "teleport" \\(known kinds: ${knownKinds().join(', ')}\\)`));

  const log = console.log;
  const lines: string[] = [];
  console.log = (s: string) => lines.push(s);
  let code: number;
  try {
    code = await goldenCommand([bad, unknown]);
  } finally {
    console.log = log;
  }
  assert.equal(code, 1);
  assert.ok(lines.some((l) => l.startsWith('PASS  bad  out_train')));
  assert.ok(lines.some((l) => l.startsWith('FAIL  unknown  ') && l.includes('teleport')));
  assert.equal(lines.at(-1), '1 passed, 2 failed');
});
