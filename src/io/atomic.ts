// Atomic file writes: the data goes to a temporary file beside the target, which is renamed over it only
// when everything was written; on any error the temporary file is removed. No half-written output is
// ever left under the target's name.

import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

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
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  writeAtomic(path, (fd) => writeAll(fd, bytes));
}
