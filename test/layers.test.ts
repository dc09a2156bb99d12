// The layering check (scripts/check-layers.mjs): src/ imports only downward and has no import cycle; and the
// check itself catches an upward import, a sibling import, an unknown folder and a cycle in a made-up tree.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// @ts-expect-error: a plain ES module script without type declarations
import { checkLayers, formatNotes, formatReport, importsOf } from '../scripts/check-layers.mjs';

interface Report { files: number; violations: { file: string; line: number; message: string }[]; cycles: string[][]; typeCycles: string[][] }
const check = checkLayers as (src: string) => Report;
const report = formatReport as (src: string, r: Report) => string;

const repoRoot = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ldm-layers-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('src/ imports only downward and has no import cycle', () => {
  const src = path.join(repoRoot, 'src');
  const r = check(src);
  assert.ok(r.files > 100, `only ${r.files} source files found under ${src}`);
  assert.equal(report(src, r), '');
});

test('the check names upward and sibling imports, unknown folders and cycles, with file and line', () => {
  const src = path.join(tmp, 'src');
  const put = (f: string, text: string) => {
    mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    writeFileSync(path.join(src, f), text);
  };
  put('engine/index.ts', "export const a = 1;\n");
  put('nn/module.ts', "import * as T from '../engine/index.js';\n// import { x } from '../models/unet.js';\nexport const b = T.a;\n");
  put('models/unet.ts', "import { b } from '../nn/module.js';\n\nimport { s } from '../diffusion/sample.js';\nexport const c = b + s;\n");
  put('diffusion/sample.ts', "export const s = 1;\nexport { c } from '../models/unet.js';\n");
  put('diffusion/types.ts', "import type { Ctx } from './ctx.js';\nexport type Step = (c: Ctx) => void;\n");
  put('diffusion/ctx.ts', "import type { Step } from './types.js';\nexport interface Ctx { step: Step }\n");
  put('train/step.ts', "import '../metrics/fid.js';\n");
  put('metrics/fid.ts', "export const m = 0;\n");
  put('misc/x.ts', "export {};\n");
  put('tasks/a.ts', "import { bb } from './b.js';\nexport const aa = 1;\n");
  put('tasks/b.ts', "export { aa as bb } from './a.js';\nconst later = () => import('./a.js');\n");
  put('index.ts', "export * from './tasks/a.js';\n");
  const r = check(src);
  const text = report(src, r);
  const lines = text.split('\n');
  assert.ok(lines.includes('src/models/unet.ts:3: imports ../diffusion/sample.js: models (level 3) may not import the higher layer diffusion (level 4)'), text);
  assert.ok(lines.includes('src/train/step.ts:1: imports ../metrics/fid.js: train and metrics are siblings on level 7 and may not import each other'), text);
  assert.ok(lines.includes('src/misc/x.ts: misc is not in the layer order (scripts/check-layers.mjs LAYERS)'), text);
  assert.ok(lines.includes('import cycle: src/diffusion/sample.ts → src/models/unet.ts → src/diffusion/sample.ts'), text);
  assert.ok(lines.includes('import cycle: src/tasks/a.ts → src/tasks/b.ts → src/tasks/a.ts'), text);
  assert.equal(r.violations.length, 3, text); // the commented-out import in nn/module.ts and the downward ones are fine
  assert.equal(r.cycles.length, 2, text);
  // Two files that only import each other's types: erased at run time, a note rather than a failure.
  assert.equal((formatNotes as (s: string, r: Report) => string)(src, r), 'note: type-only import cycle (erased at run time): src/diffusion/ctx.ts → src/diffusion/types.ts → src/diffusion/ctx.ts');
});

test('import forms: static, type-only, re-export, side effect, dynamic; comments are skipped', () => {
  const found = (importsOf as (t: string) => { spec: string; line: number; typeOnly: boolean }[])([
    "import a, { b as c } from './a.js';",
    "import type {",
    "  D,",
    "} from './d.js';",
    "export * as e from './e.js';",
    "import './f.js';",
    "/* import { g } from './g.js'; */",
    "const h = await import('./h.js'); // import './i.js'",
  ].join('\n'));
  assert.deepEqual(found.map((f) => [f.spec, f.line, f.typeOnly]), [
    ['./a.js', 1, false], ['./d.js', 2, true], ['./e.js', 5, false], ['./f.js', 6, false], ['./h.js', 8, false],
  ]);
});
