// Builds the optional MPI collectives addon (native/mpi/build/Release/ldm_mpi.node) when Open MPI's
// compiler wrapper `mpicc` is on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev). Run by
// `npm install` / `npm ci` after the kernel addon. Never fails the install: without MPI, or when the
// build fails, it prints one line, and `--distributed` training says what to install.
// LDM_SKIP_MPI=1 skips the build.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNodeGyp, firstErrorLine, runNodeGyp } from './node-gyp.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'mpi');
const logPath = join(dir, 'build', 'ldm-mpi-build.log');

function skip(why) {
  console.log(`ldm: MPI addon not built (${why}); distributed training is unavailable${existsSync(logPath) ? ` (log: ${logPath})` : ''}`);
  process.exit(0);
}

if (process.env.LDM_SKIP_MPI === '1') skip('LDM_SKIP_MPI=1');
if (!existsSync(join(dir, 'binding.gyp'))) skip('no native/mpi in this checkout');
const compile = spawnSync('mpicc', ['--showme:compile'], { encoding: 'utf8' });
if (compile.error || compile.status !== 0) skip('mpicc not found: apt-get install openmpi-bin libopenmpi-dev');
const gyp = findNodeGyp(root);
if (!gyp) skip('node-gyp not found (it ships with npm)');

const started = Date.now();
const { r, args } = runNodeGyp(gyp, dir);
mkdirSync(join(dir, 'build'), { recursive: true });
writeFileSync(logPath, `$ node ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
if (r.error) skip(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) skip(`build failed: ${firstErrorLine(r).slice(0, 200)}`);
const addon = join(dir, 'build', 'Release', 'ldm_mpi.node');
try {
  createRequire(import.meta.url)(addon);
  console.log(`ldm: MPI addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: ${addon}`);
} catch (e) {
  skip(`the built addon does not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
}
