// Atomic file writes: the data goes to a temporary file beside the target, which is renamed over it only
// when everything was written; on any error the temporary file is removed. No half-written output is
// ever left under the target's name. The file is fsynced before the rename and its directory after it,
// so that a crash (power loss, not just a killed process) cannot leave an empty or partial file either.

import { closeSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Write the whole buffer (writeSync may write less than asked). */
export function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.byteLength) done += writeSync(fd, b, done, Math.min(b.byteLength - done, 1 << 30));
}

// Temporary files of writes in progress. Writes are synchronous, so once a SIGINT/SIGTERM listener exists the
// signal is handled after the write (renamed or cleaned up) instead of killing the process in the middle of
// it; the listener removes any temporary file still listed and, when no one else handles the signal,
// re-raises it so the process ends as it would have. (SIGKILL cannot be caught: the next write of the same
// target removes temporary files of processes that no longer exist.)
const pending = new Set<string>();
let signalsHooked = false;
const listeners = new Map<NodeJS.Signals, () => void>();

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      for (const t of pending) {
        try { unlinkSync(t); } catch { /* gone */ }
      }
      pending.clear();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
    listeners.set(sig, onSignal);
  }
}

/** Install the signal listeners now: a SIGINT/SIGTERM waits for the writes that follow (see releaseSignals). */
export function holdSignals(): void {
  hookSignals();
}

/**
 * Track a file this process just created that must not outlive an interrupted run (e.g. an empty
 * placeholder reserving a name): a SIGINT/SIGTERM removes it, until `untrackPartial`. The listeners are
 * installed before the caller creates the file when it calls this first.
 */
export function trackPartial(path: string): void {
  hookSignals();
  pending.add(path);
}

export function untrackPartial(path: string): void {
  pending.delete(path);
}

/**
 * Remove the signal listeners when no tracked file is pending, so that a signal ends the process at once
 * again (a long synchronous computation that follows would otherwise hold it until it returns). Call it
 * from a later event-loop turn than the writes, so that a signal which arrived during them was handled.
 */
export function releaseSignals(): void {
  if (!signalsHooked || pending.size) return;
  for (const [sig, fn] of listeners) process.removeListener(sig, fn);
  listeners.clear();
  signalsHooked = false;
}

/** Remove `<path>.tmp-<pid>` files left by processes that are gone (killed with SIGKILL mid-write). */
function removeStaleTemps(path: string): void {
  const dir = dirname(path), base = `${basename(path)}.tmp-`;
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    if (!n.startsWith(base)) continue;
    const pid = Number(n.slice(base.length));
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as { code?: string }).code === 'ESRCH') try { unlinkSync(join(dir, n)); } catch { /* raced */ }
    }
  }
}

/** Run write(fd) on a temporary file, then rename it to `path`. */
export function writeAtomic(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd = -1;
  hookSignals();
  removeStaleTemps(path);
  try {
    try {
      fd = openSync(tmp, 'w');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? `folder ${dirname(path)} does not exist` : err.code === 'ENOTDIR' ? `${dirname(path)} is not a folder` : err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS' ? `no permission to write in ${dirname(path)}` : err.message;
      throw Object.assign(new Error(`cannot write ${path}: ${why}`), { code: err.code });
    }
    pending.add(tmp);
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
    pending.delete(tmp);
    fsyncDir(dirname(path));
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    pending.delete(tmp);
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
