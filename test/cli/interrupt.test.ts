// Ctrl-C (SIGINT) during `ldm sample`, in a real child process: the images of the batches that finished
// stay (complete PNGs with their parameters), no partial, temporary or lock file remains, and the process
// ends by the signal at once (exit status 130 in a shell) instead of after the remaining batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readImage, readPngText } from '../../src/io/image.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/ldm.mjs');
const PNG = /^sample-(\d{4})-seed(\d+)\.png$/;

test('Ctrl-C during ldm sample: finished images stay, nothing partial remains, the process ends by SIGINT', async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'ldm-interrupt-')), 'out');
  const n = 200;
  const child = spawn(process.execPath, [bin, 'sample', '--class', '7', '-n', String(n), '-b', '1', '--steps', '10', '-o', dir, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const images = () => {
    try {
      return readdirSync(dir).filter((f) => PNG.test(f)).length;
    } catch {
      return 0;
    }
  };
  const t0 = Date.now();
  while (images() < 2) {
    assert.equal(child.exitCode, null, `ldm sample ended early: ${stderr}`);
    assert.ok(Date.now() - t0 < 180_000, 'no image within 3 minutes');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  const t1 = Date.now();
  const [code, signal] = await once(child, 'exit');
  const stopped = Date.now() - t1;
  assert.equal(signal, 'SIGINT', `ended with code ${code}, signal ${signal}: ${stderr}`);
  assert.equal(stderr, '');
  const files = readdirSync(dir).sort();
  assert.deepEqual(files.filter((f) => !PNG.test(f)), [], 'only finished images remain (no temporary, lock or grid file)');
  assert.ok(files.length >= 2 && files.length < n, `${files.length} images of ${n}`);
  files.forEach((f, i) => {
    const [, num, seed] = PNG.exec(f)!;
    assert.equal(Number(num), i, 'numbered without gaps');
    assert.equal(Number(seed), 42 + i);
    const im = readImage(path.join(dir, f));
    assert.equal(im.width, 32);
    const params = JSON.parse(readPngText(path.join(dir, f)).parameters);
    assert.equal(params.index, i);
    assert.equal(params.classLabel, 7);
  });
  // one more batch at most (one image, ten steps), not the remaining ones
  assert.ok(stopped < 10_000, `the process took ${stopped} ms to stop`);
});
