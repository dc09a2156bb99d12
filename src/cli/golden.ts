// `ldm golden [--from-ckpt] <dir> [<dir> …]` (also `npm run golden -- <dir> …`): run golden fixture folders
// and print one line per output with its relative L2 error and PASS/FAIL; exit 1 when any fails.
// A folder without case.json runs every sub-folder that has one.

import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatResult, runCase } from '../golden/runner.js';
import { KINDS, knownKinds } from '../golden/kinds/index.js';

export const GOLDEN_USAGE = `usage: ldm golden [--from-ckpt] [--list-kinds] <dir> [<dir> …]
  Runs golden fixture folders (case.json, config.yaml, weights.safetensors, io.safetensors) and compares
  every output with io.safetensors (relative L2 ≤ 1e-4 for forward passes; indices exactly).
  --from-ckpt   load weights from model.ckpt where a folder has one
  --list-kinds  print the registered kinds`;

function expand(dir: string): string[] {
  if (existsSync(path.join(dir, 'case.json'))) return [dir];
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const subs = readdirSync(dir).sort().map((n) => path.join(dir, n)).filter((p) => existsSync(path.join(p, 'case.json')));
  if (subs.length === 0) throw new Error(`${dir}: no case.json here or in its sub-folders`);
  return subs;
}

export async function goldenCommand(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const dirs = argv.filter((a) => !a.startsWith('--'));
  for (const f of flags) if (!['--from-ckpt', '--list-kinds', '--help'].includes(f)) {
    console.error(`ldm golden: unknown option ${f}\n${GOLDEN_USAGE}`);
    return 2;
  }
  if (flags.has('--help')) {
    console.log(GOLDEN_USAGE);
    return 0;
  }
  if (flags.has('--list-kinds')) {
    for (const k of knownKinds()) console.log(`${k}\t${KINDS[k].describe}`);
    return 0;
  }
  if (dirs.length === 0) {
    console.error(GOLDEN_USAGE);
    return 2;
  }
  let failed = 0, passed = 0;
  for (const d of dirs) {
    let cases: string[];
    try {
      cases = expand(d);
    } catch (e) {
      console.log(`FAIL  ${d}  ${(e as Error).message}`);
      failed++;
      continue;
    }
    for (const c of cases) {
      try {
        const t0 = Date.now();
        const results = await runCase(c, { fromCkpt: flags.has('--from-ckpt') });
        for (const r of results) {
          console.log(formatResult(r));
          if (r.pass) passed++;
          else failed++;
        }
        console.log(`      ${path.basename(c)}: ${results.length} outputs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        console.log(`FAIL  ${path.basename(c)}  ${(e as Error).message}`);
        failed++;
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

// Run directly: node --import tsx src/cli/golden.ts <dir> …
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  goldenCommand(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
