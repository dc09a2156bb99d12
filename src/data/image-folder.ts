// A folder of PNG/JPEG images (searched recursively, in sorted path order, hidden entries skipped) as a
// training set. Class labels come from the first sub-folder under the root (sorted names, as torchvision's
// ImageFolder numbers them) or from a CSV/JSONL (path,label); captions from a `.txt` file beside each image
// (foo.png → foo.txt) or from a CSV/JSONL (path,caption). Every label and caption is read when the dataset
// is built, so a missing one is reported before any training starts.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ImageFiles, checkPreprocess, type ImageRecord } from './image-files.js';
import type { PreprocessOptions } from './preprocess.js';
import { readPathTable } from './tables.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export interface ImageFolderOptions extends PreprocessOptions {
  root: string;
  /** 'folders' (first sub-folder = class), a CSV/JSONL file of (path, label), or none. */
  labels?: 'folders' | string | null;
  /** 'txt' (a .txt beside each image), a CSV/JSONL file of (path, caption), or none. */
  captions?: 'txt' | string | null;
  /** Keep decoded, resized images in memory (see ImageFilesOptions.cache). */
  cache?: boolean;
}

/** Image files under `root`, as sorted forward-slash relative paths. */
export function listImages(root: string): string[] {
  if (!existsSync(root)) throw new Error(`image folder ${root} does not exist`);
  if (!statSync(root).isDirectory()) throw new Error(`image folder ${root} is not a directory`);
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = join(dir, e.name);
      const isDir = e.isDirectory() || (e.isSymbolicLink() && statSync(full).isDirectory());
      if (isDir) walk(full, r);
      else if (IMAGE_EXTENSIONS.some((x) => e.name.toLowerCase().endsWith(x))) out.push(r);
    }
  };
  walk(root, '');
  if (out.length === 0) throw new Error(`image folder ${root} has no images (looked for ${IMAGE_EXTENSIONS.join(', ')} files, recursively)`);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sideFile(root: string, p: string, what: string): string {
  if (isAbsolute(p) || existsSync(p)) return p;
  const inRoot = join(root, p);
  if (existsSync(inRoot)) return inRoot;
  throw new Error(`the ${what} file ${p} does not exist (looked in the working directory and in ${root})`);
}

function fromTable(root: string, file: string, rel: string[], keys: string[], what: string): string[] {
  const table = readPathTable(file, keys, what);
  const missing = rel.filter((r) => !table.has(r));
  if (missing.length > 0) {
    throw new Error(`${file}: no ${what} for ${missing.length} image(s) under ${root}, e.g. ${missing.slice(0, 3).join(', ')}`);
  }
  const known = new Set(rel);
  for (const [k, v] of table) if (!known.has(k)) throw new Error(`${file}:${v.line}: ${k} is not an image under ${root}`);
  return rel.map((r) => table.get(r)!.value);
}

export class ImageFolder extends ImageFiles {
  readonly root: string;

  constructor(o: ImageFolderOptions) {
    checkPreprocess(o, `image folder ${o.root}`);
    const root = resolve(o.root);
    const rel = listImages(root);
    const records: ImageRecord[] = rel.map((r) => ({ path: join(root, r), relpath: r }));
    let classNames: string[] | undefined;
    let numClasses: number | undefined;
    if (o.labels === 'folders') {
      const bad = rel.find((r) => !r.includes('/'));
      if (bad) throw new Error(`image folder ${root}: ${bad} is not inside a class sub-folder (labels: folders takes each image's class from the first sub-folder under the root)`);
      classNames = [...new Set(rel.map((r) => r.split('/')[0]))].sort();
      const idx = new Map(classNames.map((c, k) => [c, k]));
      records.forEach((rec, k) => {
        rec.human_label = rel[k].split('/')[0];
        rec.class_label = idx.get(rec.human_label)!;
      });
      numClasses = classNames.length;
    } else if (o.labels) {
      const file = sideFile(root, o.labels, 'labels');
      const values = fromTable(root, file, rel, ['label', 'class', 'class_label'], 'label').map((v) => v.trim());
      if (values.every((v) => /^\d+$/.test(v))) {
        values.forEach((v, k) => (records[k].class_label = Number(v)));
        numClasses = Math.max(...values.map(Number)) + 1;
      } else {
        classNames = [...new Set(values)].sort();
        const idx = new Map(classNames.map((c, k) => [c, k]));
        values.forEach((v, k) => {
          records[k].class_label = idx.get(v)!;
          records[k].human_label = v;
        });
        numClasses = classNames.length;
      }
    }
    if (o.captions === 'txt') {
      const missing: string[] = [];
      records.forEach((rec) => {
        const txt = rec.path.replace(/\.[^./]+$/, '.txt');
        if (!existsSync(txt)) missing.push(txt);
        else rec.caption = readFileSync(txt, 'utf8').trim();
      });
      if (missing.length > 0) throw new Error(`image folder ${root}: ${missing.length} image(s) have no caption file beside them (captions: txt), e.g. ${missing.slice(0, 3).join(', ')}`);
    } else if (o.captions) {
      const file = sideFile(root, o.captions, 'captions');
      fromTable(root, file, rel, ['caption', 'text'], 'caption').forEach((c, k) => (records[k].caption = c));
    }
    const { labels: _l, captions: _c, root: _r, ...pre } = o;
    super(records, { ...pre, ...(classNames ? { classNames } : {}), ...(numClasses !== undefined ? { numClasses } : {}) });
    this.root = root;
  }
}
