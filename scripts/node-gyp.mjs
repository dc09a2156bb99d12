// Finding and running node-gyp for the package's native addons (scripts/build-native.mjs, scripts/build-mpi.mjs).
//
// node-gyp comes from npm itself (npm passes its path in npm_config_node_gyp to install scripts; outside
// npm we look next to the npm that is on PATH or next to node). Node's headers are taken from the local
// Node installation when present (no download).

import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';

export function findNodeGyp(root) {
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

/** `node-gyp rebuild --release` in `cwd` with extra arguments; returns spawnSync's result and the argv used. */
export function runNodeGyp(gyp, cwd, extra = []) {
  const args = [gyp, 'rebuild', '--release', '--jobs=max', ...extra];
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { r, args };
}

/** The first line of a failed build's output that says what went wrong. */
export function firstErrorLine(r) {
  const lines = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').map((l) => l.trim());
  return lines.find((l) => /error|not found|cannot|failed/i.test(l) && !/^gyp (info|verb)/.test(l)) ?? `node-gyp exited with ${r.status}`;
}
