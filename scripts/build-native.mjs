// Builds the native kernel addon (build/Release/ldm_native.node) with node-gyp; run by `npm install` /
// `npm ci` (the package's "install" script) and by hand (`node scripts/build-native.mjs`).
//
// node-gyp comes from npm itself (npm passes its path in npm_config_node_gyp to install scripts; outside
// npm we look next to the npm that is on PATH or next to node). Node's headers are taken from the local
// Node installation when present (no download). The build never fails the install: on any problem it
// prints one warning line and exits 0, and the engine keeps the TypeScript kernels.
// LDM_SKIP_NATIVE=1 skips the build.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const logPath = join(root, 'build', 'ldm-native-build.log');

function warn(why) {
  console.warn(`ldm: WARNING: native kernels not built (${why}); the TypeScript kernels will be used${existsSync(logPath) ? ` (log: ${logPath})` : ''}`);
  process.exit(0);
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const npm = join(dir, 'npm');
    if (!dir || !existsSync(npm)) continue;
    try {
      candidates.push(join(dirname(realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      // unreadable link: try the next one
    }
  }
  const prefix = resolve(dirname(process.execPath), '..');
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((p) => existsSync(p));
}

if (process.env.LDM_SKIP_NATIVE === '1') {
  console.log('ldm: LDM_SKIP_NATIVE=1, native kernels not built; the TypeScript kernels will be used');
  process.exit(0);
}
if (!existsSync(join(root, 'binding.gyp'))) {
  console.log('ldm: no native addon in this checkout; the TypeScript kernels will be used');
  process.exit(0);
}

const gyp = findNodeGyp();
if (!gyp) warn('node-gyp not found (it ships with npm)');

const args = [gyp, 'rebuild', '--release', '--jobs=max'];
// Use the headers of the running Node when they are installed next to it (avoids a download).
const prefix = resolve(dirname(process.execPath), '..');
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

mkdirSync(join(root, 'build'), { recursive: true });
const started = Date.now();
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
// node-gyp rebuild clears build/, so the log is written afterwards.
mkdirSync(join(root, 'build'), { recursive: true });
writeFileSync(logPath, `$ node ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
if (r.error) warn(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  const lines = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').map((l) => l.trim());
  const first = lines.find((l) => /error|not found|cannot|failed/i.test(l) && !/^gyp (info|verb)/.test(l)) ?? `node-gyp exited with ${r.status}`;
  warn(`build failed: ${first.slice(0, 200)}`);
}

const addon = join(root, 'build', 'Release', 'ldm_native.node');
try {
  const info = createRequire(import.meta.url)(addon).info();
  console.log(`ldm: native kernels built in ${((Date.now() - started) / 1000).toFixed(1)} s (${info.isa}, ${info.threads} threads): ${addon}`);
} catch (e) {
  warn(`the built addon does not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
}
