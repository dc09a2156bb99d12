// The output folder: <out>/<job id>/<i>.png and <out>/<job id>/job.json. Paths are built only from a
// job id that matches the server's own id format and an integer index; nothing a request sends is used
// as a path. Saving is idempotent: a job whose results are already on disk is not written again.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isJobId(s: string): boolean {
  return ID.test(s);
}

export class ResultStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
    mkdirSync(this.dir, { recursive: true });
  }

  private jobDir(id: string): string {
    if (!isJobId(id)) throw new Error(`not a job id: ${JSON.stringify(id)}`);
    return path.join(this.dir, id);
  }

  /** Write the PNGs, then job.json (last, so its presence means the job's files are complete). Returns false if they were there. */
  save(id: string, images: Buffer[], meta: Record<string, unknown>): boolean {
    const d = this.jobDir(id);
    if (existsSync(path.join(d, 'job.json'))) return false;
    mkdirSync(d, { recursive: true });
    images.forEach((b, i) => writeFileAtomic(path.join(d, `${i}.png`), b));
    writeFileAtomic(path.join(d, 'job.json'), Buffer.from(JSON.stringify({ ...meta, images: images.length }, null, 1)));
    return true;
  }

  /** The bytes of image i of job id, or null. */
  image(id: string, i: number): Buffer | null {
    if (!Number.isInteger(i) || i < 0 || i > 10_000) return null;
    const f = path.join(this.jobDir(id), `${i}.png`);
    return existsSync(f) ? readFileSync(f) : null;
  }
}
