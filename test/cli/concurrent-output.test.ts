// Two `ldm sample` processes writing into one output folder at once: no file is overwritten, no two files share a
// number, every file is a whole PNG whose recorded seed is the one in its name. And the same rules, exactly, for
// writers in one process: different suffixes do not share a number, a number held by another writer is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutputFolder } from '../../src/cli/output.js';
import { readPngText } from '../../src/io/image.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-out-'));

test('output folder: writers with different suffixes never share a number; a number being written elsewhere is skipped', () => {
  const dir = mkdtempSync(path.join(tmp, 'unit-'));
  const a = new OutputFolder(dir, 'sample'), b = new OutputFolder(dir, 'sample'); // both start at 0000
  const fa = a.write(() => '-seed1.png', Buffer.from('a'));
  const fb = b.write(() => '-seed2.png', Buffer.from('b'));
  assert.equal(path.basename(fa), 'sample-0000-seed1.png');
  assert.equal(path.basename(fb), 'sample-0001-seed2.png');
  // Number 0002 is being written by another process (its lock exists): skipped, not shared.
  writeFileSync(path.join(dir, '.sample-0002.lock'), '12345\n');
  assert.equal(path.basename(a.write(() => '-grid.png', Buffer.from('g'))), 'sample-0003-grid.png');
  assert.deepEqual(readdirSync(dir).sort(), ['.sample-0002.lock', 'sample-0000-seed1.png', 'sample-0001-seed2.png', 'sample-0003-grid.png']);
  // A folder opened later continues after the held number too.
  assert.equal(path.basename(new OutputFolder(dir, 'sample').write(() => '.png', Buffer.from('c'))), 'sample-0004.png');
});

function sample(out: string, seed: number, n: number): Promise<{ code: number | null; err: string }> {
  // One image per batch: each process writes its images one by one while it samples, over seconds.
  const args = [path.join(repo, 'bin', 'ldm.mjs'), 'sample', '--class', '3', '-n', String(n), '--seed', String(seed), '--steps', '4', '-b', '1', '--out', out];
  const p = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, LDM_NUM_THREADS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => void (err += String(d)));
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, err })));
}

test('two ldm sample processes writing into one folder at once never overwrite each other and never share a number', { timeout: 300_000 }, async () => {
  const out = path.join(tmp, 'shared');
  const n = 16;
  // Two processes started together, then three: they write while the others write. Seeds far apart: names differ.
  const rounds = [[100, 500], [1000, 1500, 2000]];
  for (const round of rounds) {
    const rs = await Promise.all(round.map((s) => sample(out, s, n)));
    rs.forEach((r) => assert.equal(r.code, 0, r.err));
  }
  const runs = rounds.flat();
  const files = readdirSync(out).sort();
  const images = files.filter((f) => /-seed\d+\.png$/.test(f)), grids = files.filter((f) => f.endsWith('-grid.png'));
  assert.equal(images.length, runs.length * n, files.join(' '));
  assert.equal(grids.length, runs.length);
  assert.deepEqual(files.filter((f) => f.startsWith('.')), [], 'no lock or temporary file remains');
  // Every number once: 0 … (images + grids − 1).
  const numbers = files.map((f) => Number(/^sample-(\d+)-/.exec(f)![1])).sort((x, y) => x - y);
  assert.deepEqual(numbers, Array.from({ length: files.length }, (_, i) => i));
  // Each image is whole and is the one its name says (the seed in its parameters); every seed of every run is there.
  const seen = new Set<number>();
  const expected = new Set(runs.flatMap((s) => Array.from({ length: n }, (_, i) => s + i)));
  for (const f of images) {
    const seed = Number(/-seed(\d+)\.png$/.exec(f)![1]);
    const params = JSON.parse(readPngText(readFileSync(path.join(out, f))).parameters);
    assert.equal(params.seed, seed, f);
    assert.ok(!seen.has(seed), `seed ${seed} written twice`);
    seen.add(seed);
  }
  assert.deepEqual([...seen].sort((x, y) => x - y), [...expected].sort((x, y) => x - y));
  // The writers by number: interleaved numbers show that the processes really wrote at the same time.
  const byNumber = (lo: number, hi: number, letter: (seed: number) => string) => files.filter((f) => {
    const k = Number(/^sample-(\d+)/.exec(f)![1]);
    return k >= lo && k < hi && /-seed\d+\.png$/.test(f);
  }).map((f) => letter(Number(/-seed(\d+)/.exec(f)![1]))).join('');
  const first = byNumber(0, 2 * (n + 1), (s) => (s >= 500 ? 'B' : 'A'));
  const second = byNumber(2 * (n + 1), files.length, (s) => (s >= 2000 ? 'E' : s >= 1500 ? 'D' : 'C'));
  console.log(`concurrent ldm sample: ${runs.length} processes (2, then 3 at once), ${images.length} images + ${grids.length} grids, numbers 0…${files.length - 1} each once; writers by number: ${first} | ${second}`);
  const runsOf = (p: string) => p.replace(/(.)\1*/g, '$1').length;
  assert.ok(runsOf(first) > 2 || runsOf(second) > 3, `the processes did not write at the same time (${first} | ${second}): nothing was tested`);
});
