// Output files that never replace an existing one, also when several processes write into one folder at once.
// Images are numbered onward from the highest number already in the folder (`<prefix>-NNNN<suffix>`, the suffix
// free: `-seed42.png`, `-grid.png`). A number is claimed by creating its lock file `.<prefix>-NNNN.lock`
// exclusively ('wx': exactly one process succeeds); holding it, the writer checks that no file of that number
// exists yet, writes the bytes through a temporary file renamed to the final name (no half-written PNG is ever
// visible under it), and removes the lock. Another process meeting the lock or a file of that number moves on
// to the next free number. A process killed while writing leaves its lock behind (it holds its process id) and
// that number is skipped; no file is ever overwritten or shares its number with another.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function numbered(prefix: string): RegExp {
  return new RegExp(`^${escape(prefix)}-(\\d+)[-.]`);
}

/** The next free number for `<prefix>-NNNN…` files in `dir` (numbers being written by another process count). */
export function nextIndex(dir: string, prefix: string): number {
  if (!existsSync(dir)) return 0;
  const re = numbered(prefix), lock = numbered(`.${prefix}`);
  let next = 0;
  for (const f of readdirSync(dir)) {
    const m = re.exec(f) ?? lock.exec(f);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/** Whether a file of number i (any suffix) exists in dir. */
function numberTaken(dir: string, prefix: string, i: number): boolean {
  const re = numbered(prefix);
  return readdirSync(dir).some((f) => {
    const m = re.exec(f);
    return !!m && Number(m[1]) === i;
  });
}

/** Reserve a file name exclusively (created empty, or holding `content`); false when it exists already. */
export function reserve(file: string, content?: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    if (content) writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

export class OutputFolder {
  private index: number;

  constructor(readonly dir: string, readonly prefix: string, readonly overwrite = false) {
    mkdirSync(dir, { recursive: true });
    this.index = overwrite ? 0 : nextIndex(dir, prefix);
  }

  /**
   * Write bytes under `<prefix>-<NNNN><suffix>` with the next free number (or exactly that number with
   * overwrite); returns the path.
   */
  write(suffix: (index: number) => string, bytes: Uint8Array): string {
    for (let tries = 0; ; tries++) {
      const i = this.index++;
      const num = `${this.prefix}-${String(i).padStart(4, '0')}`;
      const file = path.join(this.dir, `${num}${suffix(i)}`);
      if (this.overwrite) {
        writeFileAtomic(file, bytes);
        return file;
      }
      const lock = path.join(this.dir, `.${num}.lock`);
      if (reserve(lock, `${process.pid}\n`)) {
        try {
          if (!numberTaken(this.dir, this.prefix, i)) {
            writeFileAtomic(file, bytes);
            return file;
          }
        } finally {
          unlinkSync(lock);
        }
      }
      // Another process has (or is writing) this number: continue after the highest number now present.
      this.index = Math.max(this.index, nextIndex(this.dir, this.prefix));
      if (tries > 10000) throw new Error(`cannot find a free file name in ${this.dir}`);
    }
  }
}
