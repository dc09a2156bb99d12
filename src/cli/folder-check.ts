// Whether a folder can take new files, checked before any work (a run that fails only when it writes its
// results has wasted the whole run).

import { closeSync, openSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * Why files cannot be written into folder `dir` (undefined: they can). A missing folder is judged by its
 * nearest existing parent. A file is created there and removed again: permission bits say nothing for
 * root, and /proc or /sys refuse new files whatever they say. Nothing else is created — in particular no
 * mkdir -p into such a place: Node's recursive mkdir loops forever under /proc.
 */
export function folderProblem(dir: string): string | undefined {
  const abs = path.resolve(dir);
  let p = abs;
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a file on the way up, which the walk reaches and names
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `cannot use ${dir}: ${(e as Error).message}`;
      const up = path.dirname(p);
      if (up === p) return `cannot create ${dir}`;
      p = up;
      continue;
    }
    if (!isDir) return p === abs ? `${dir} is a file, not a folder` : `cannot create ${dir}: ${p} is a file, not a folder`;
    break;
  }
  const probe = path.join(p, `.ldm-write-test-${process.pid}`);
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const where = p === abs ? dir : `${p} (to create ${dir} in)`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write in ${where}`;
    if (code === 'EROFS') return `${where} is on a read-only file system`;
    if (code === 'ENOENT' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EINVAL') return `${where} does not take new files`;
    return `cannot write in ${where}: ${(e as Error).message}`;
  }
  try { unlinkSync(probe); } catch { /* raced: gone */ }
  return undefined;
}
