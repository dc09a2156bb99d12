// Atomic file writes: the data goes to a temporary file beside the target, which is renamed over it only
// when everything was written; on any error the temporary file is removed. No half-written output is
// ever left under the target's name. The file is fsynced before the rename and its directory after it,
// so that a crash (power loss, not just a killed process) cannot leave an empty or partial file either.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Write the whole buffer (writeSync may write less than asked). */
export function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.byteLength) done += writeSync(fd, b, done, Math.min(b.byteLength - done, 1 << 30));
}

/** Run write(fd) on a temporary file, then rename it to `path`. */
export function writeAtomic(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd = -1;
  try {
    fd = openSync(tmp, 'w');
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
    fsyncDir(dirname(path));
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  writeAtomic(path, (fd) => writeAll(fd, bytes));
}

/** fsync a directory (makes a rename or a new entry in it durable); a no-op where directories cannot be opened. */
export function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* platforms without directory fsync */
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
