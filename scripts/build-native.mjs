// Builds the native kernel addon (build/Release/ldm_native.node) with node-gyp; run by `npm install` /
// `npm ci` (the package's "install" script) and by hand (`node scripts/build-native.mjs`).
//
// node-gyp is found and run by ./node-gyp.mjs. The build never fails the install: on any problem it
// prints one warning line and exits 0, and the engine keeps the TypeScript kernels.
// LDM_SKIP_NATIVE=1 skips the build.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeGyp, firstErrorLine, runNodeGyp } from './node-gyp.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'build', 'ldm-native-build.log');

function warn(why) {
  console.warn(`ldm: WARNING: native kernels not built (${why}); the TypeScript kernels will be used${existsSync(logPath) ? ` (log: ${logPath})` : ''}`);
  process.exit(0);
}

if (process.env.LDM_SKIP_NATIVE === '1') {
  console.log('ldm: LDM_SKIP_NATIVE=1, native kernels not built; the TypeScript kernels will be used');
  process.exit(0);
}
if (!existsSync(join(root, 'binding.gyp'))) {
  console.log('ldm: no native addon in this checkout; the TypeScript kernels will be used');
  process.exit(0);
}

const gyp = findNodeGyp(root);
if (!gyp) warn('node-gyp not found (it ships with npm)');

mkdirSync(join(root, 'build'), { recursive: true });
const started = Date.now();
const { r, args } = runNodeGyp(gyp, root);
// node-gyp rebuild clears build/, so the log is written afterwards.
mkdirSync(join(root, 'build'), { recursive: true });
writeFileSync(logPath, `$ node ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
if (r.error) warn(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  warn(`build failed: ${firstErrorLine(r).slice(0, 200)}`);
}

const addon = join(root, 'build', 'Release', 'ldm_native.node');
try {
  const info = createRequire(import.meta.url)(addon).info();
  console.log(`ldm: native kernels built in ${((Date.now() - started) / 1000).toFixed(1)} s (${info.isa}, ${info.threads} threads): ${addon}`);
} catch (e) {
  warn(`the built addon does not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
}
