// Every input the fuzzer (scripts/fuzz) once found failing, run through the same entry points: each must
// now end in a clean error naming the file, or load. Files ending .gz are stored compressed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { EXT, FORMATS, runInput } from '../../scripts/fuzz/targets.js';

const corpus = path.resolve(import.meta.dirname, '../fixtures/fuzz-corpus');

for (const format of FORMATS) {
  const dir = path.join(corpus, format);
  const files = existsSync(dir) ? readdirSync(dir).sort() : [];
  test(`fuzz corpus: ${format} (${files.length} inputs) end in a clean error or load`, () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), `ldm-corpus-${format}-`));
    try {
      const work = path.join(tmp, 'work');
      for (const name of files) {
        const raw = readFileSync(path.join(dir, name));
        const file = path.join(tmp, `${name.replace(/\.gz$/, '').replace(/\.[^.]+$/, '')}.${EXT[format]}`);
        writeFileSync(file, name.endsWith('.gz') ? gunzipSync(raw) : raw);
        rmSync(work, { recursive: true, force: true });
        mkdirSync(work);
        const t0 = Date.now();
        const r = runInput(format, file, work);
        assert.ok(r.outcome === 'clean' || r.outcome === 'loaded', `${format}/${name}: ${r.outcome}: ${r.message}`);
        assert.ok(Date.now() - t0 < 20000, `${format}/${name} took ${Date.now() - t0} ms`);
        rmSync(file);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}
