// SHA-256 of model and input files for the PNG parameters: computed once per file and remembered in
// memory and in a small table in the user's cache folder (LDM_CACHE_DIR, else $XDG_CACHE_HOME/ldm-ts or
// ~/.cache/ldm-ts), keyed by the file's real path, size and mtime — so a multi-gigabyte checkpoint is read
// once, not on every run, and nothing is written into model folders. A changed file is hashed again.

import { closeSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

interface Entry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

const memo = new Map<string, Entry>();

export function hashCacheFile(): string {
  const dir = process.env.LDM_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'ldm-ts');
  return path.join(dir, 'sha256.json');
}

/** Hash a file's bytes (streamed in 8 MiB reads). */
export function hashFile(file: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 << 20);
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function readTable(file: string): Record<string, Entry> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Entry>;
  } catch {
    return {};
  }
}

/** SHA-256 of a file, from memory or the cache table when the file has not changed since. */
export function cachedSha256(file: string): string {
  const real = realpathSync(file);
  const s = statSync(real);
  const fresh = (e: Entry | undefined) => e && e.size === s.size && e.mtimeMs === s.mtimeMs && /^[0-9a-f]{64}$/.test(e.sha256);
  const m = memo.get(real);
  if (fresh(m)) return m!.sha256;
  const table = hashCacheFile();
  const t = readTable(table);
  if (fresh(t[real])) {
    memo.set(real, t[real]);
    return t[real].sha256;
  }
  const e: Entry = { size: s.size, mtimeMs: s.mtimeMs, sha256: hashFile(real) };
  memo.set(real, e);
  // Files under a megabyte hash faster than the table is read: only large files are remembered on disk.
  if (s.size >= 1 << 20) {
    try {
      mkdirSync(path.dirname(table), { recursive: true });
      writeFileAtomic(table, Buffer.from(JSON.stringify({ ...readTable(table), [real]: e })));
    } catch {
      // a read-only home: the memory cache still holds it
    }
  }
  return e.sha256;
}
