// Compiles src/ to dist/ (JavaScript + .d.ts, tsconfig.build.json) and copies the files src/ reads at
// run time (JSON tables, worker entry .mjs files, static pages) beside the compiled modules. Run by the
// package's `prepare` script (npm ci / npm install in a checkout, installs from git, npm pack), so an
// installed package runs compiled JavaScript and never compiles TypeScript at run time.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src'), dist = join(root, 'dist');

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (existsSync(join(dist, 'index.js'))) {
    console.log('ldm: typescript is not installed; keeping the dist/ that is there');
    process.exit(0);
  }
  console.error('ldm: cannot build dist/: typescript is not installed (npm install --include=dev)');
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
const t0 = Date.now();
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  console.error('ldm: tsc -p tsconfig.build.json failed');
  process.exit(r.status ?? 1);
}

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
let copied = 0;
for (const f of walk(src)) {
  if (f.endsWith('.ts')) continue;
  const out = join(dist, relative(src, f));
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(f, out);
  copied++;
}
console.log(`ldm: built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s (${copied} asset files copied)`);
