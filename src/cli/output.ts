// Output files that never replace an existing one: images are numbered onward from the highest number
// already in the folder, and each name is taken with an exclusive create ('wx'), so two processes writing
// into one folder get different numbers. The bytes then go in through a temporary file and a rename over
// the placeholder this process created (no half-written PNG under the final name).

import { closeSync, existsSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The next free number for `<prefix>-NNNN…` files in `dir`. */
export function nextIndex(dir: string, prefix: string): number {
  if (!existsSync(dir)) return 0;
  const re = new RegExp(`^${escape(prefix)}-(\\d+)[-.]`);
  let next = 0;
  for (const f of readdirSync(dir)) {
    const m = re.exec(f);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/** Reserve a file name exclusively; false when it exists already. */
export function reserve(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
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
      const file = path.join(this.dir, `${this.prefix}-${String(i).padStart(4, '0')}${suffix(i)}`);
      if (this.overwrite || reserve(file)) {
        writeFileAtomic(file, bytes);
        return file;
      }
      // Another process took it: continue after the highest number now present.
      this.index = Math.max(this.index, nextIndex(this.dir, this.prefix));
      if (tries > 10000) throw new Error(`cannot find a free file name in ${this.dir}`);
    }
  }
}
