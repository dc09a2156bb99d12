// SHA-256 of model and input files for the PNG parameters: computed once per file and remembered in
// memory and, where the folder is writable, in a `<file>.sha256` note beside it (hash, size, mtime), so a
// multi-gigabyte checkpoint is read once, not on every run. A changed file (size or mtime) is hashed again.

import { closeSync, openSync, readSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

const memo = new Map<string, { key: string; hash: string }>();

function stamp(file: string): string {
  const s = statSync(file);
  return `${s.size} ${Math.round(s.mtimeMs)}`;
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

/** SHA-256 of a file, from the memory / the note beside it when the file has not changed since. */
export function cachedSha256(file: string): string {
  const key = stamp(file);
  const m = memo.get(file);
  if (m && m.key === key) return m.hash;
  const note = `${file}.sha256`;
  try {
    const [hash, size, mtime] = readFileSync(note, 'utf8').trim().split(/\s+/);
    if (/^[0-9a-f]{64}$/.test(hash) && `${size} ${mtime}` === key) {
      memo.set(file, { key, hash });
      return hash;
    }
  } catch {
    // no note yet
  }
  const hash = hashFile(file);
  memo.set(file, { key, hash });
  try {
    writeFileSync(note, `${hash} ${key}\n`);
  } catch {
    // a read-only folder: the memory cache still holds it
  }
  return hash;
}
