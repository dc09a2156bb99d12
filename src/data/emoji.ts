// The emoji set from the `emoji-datasource-google` npm package: img/google/64/*.png (64×64 RGBA; 1,911
// emoji and 1,875 skin-tone variations = 3,786 images in version 16) with emoji.json's names, short names,
// categories and sub-categories. Images are composited on a fixed background (white by default); the
// caption is the lower-cased name, the skin tone(s) of a variation and the short names (underscores as
// spaces), comma-separated; the class is the category (categories.json order) or the sub-category.
// Examples are ordered by the package's sort_order, each emoji before its skin-tone variations.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageFiles, type ImageRecord } from './image-files.js';
import { optionalPackageDir } from './packages.js';
import type { PreprocessOptions } from './preprocess.js';

const PACKAGE = 'emoji-datasource-google';
const SKIN: Record<string, string> = {
  '1F3FB': 'light skin tone',
  '1F3FC': 'medium-light skin tone',
  '1F3FD': 'medium skin tone',
  '1F3FE': 'medium-dark skin tone',
  '1F3FF': 'dark skin tone',
};

export interface EmojiOptions extends Partial<PreprocessOptions> {
  /** Class labels from the 'category' (default, 10 classes) or the 'subcategory'. */
  classes?: 'category' | 'subcategory';
  /** Leave out the skin-tone variations (1,911 images). */
  baseOnly?: boolean;
  /** Keep decoded images in memory (default true: 46 MB at 64×64 per process). */
  cache?: boolean;
}

interface EmojiEntry {
  name?: string | null;
  short_names?: string[];
  image: string;
  category: string;
  subcategory: string;
  sort_order: number;
  has_img_google?: boolean;
  skin_variations?: Record<string, { image: string; has_img_google?: boolean }>;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`emoji: cannot read ${file}: ${(e as Error).message}`);
  }
}

export class Emoji extends ImageFiles {
  constructor(o: EmojiOptions = {}) {
    const dir = optionalPackageDir(PACKAGE, 'emoji');
    const entries = readJson(join(dir, 'emoji.json')) as EmojiEntry[];
    const cats = readJson(join(dir, 'categories.json')) as Record<string, Record<string, string[]>>;
    if (!Array.isArray(entries) || !cats || typeof cats !== 'object') throw new Error(`emoji: ${dir}: unexpected emoji.json / categories.json layout`);
    const by = o.classes ?? 'category';
    if (by !== 'category' && by !== 'subcategory') throw new RangeError(`emoji: classes must be 'category' or 'subcategory', got ${JSON.stringify(by)}`);
    const classNames = by === 'category' ? Object.keys(cats) : Object.values(cats).flatMap((s) => Object.keys(s));
    const idx = new Map(classNames.map((c, k) => [c, k]));
    const imgDir = join(dir, 'img', 'google', '64');
    const records: ImageRecord[] = [];
    const sorted = [...entries].sort((a, b) => a.sort_order - b.sort_order);
    for (const e of sorted) {
      const cls = by === 'category' ? e.category : e.subcategory;
      const label = idx.get(cls);
      if (label === undefined) throw new Error(`emoji: ${e.image}: ${by} ${JSON.stringify(cls)} is not in categories.json`);
      const name = (e.name ?? e.short_names?.[0] ?? e.image).toLowerCase();
      const shorts = (e.short_names ?? []).map((s) => s.replace(/_/g, ' ')).filter((s) => s !== name);
      const add = (file: string, tones: string[]) => {
        const caption = [...new Set([name, ...tones, ...shorts])].join(', ');
        records.push({ path: join(imgDir, file), relpath: file, class_label: label, human_label: cls, caption });
      };
      if (e.has_img_google) add(e.image, []);
      if (!o.baseOnly && e.skin_variations) {
        for (const [key, v] of Object.entries(e.skin_variations)) {
          if (v.has_img_google) add(v.image, key.split('-').map((t) => SKIN[t] ?? t.toLowerCase()));
        }
      }
    }
    if (records.length === 0 || !existsSync(records[0].path)) throw new Error(`emoji: no images in ${imgDir} (is ${PACKAGE} complete? reinstall it with \`npm install --save-dev ${PACKAGE}\`)`);
    const { classes: _c, baseOnly: _b, ...pre } = o;
    super(records, { size: 64, flipP: 0, cache: true, ...pre, classNames, numClasses: classNames.length });
  }
}
