// Runs every test/**/*.test.ts with node's built-in test runner (through tsx for TypeScript).
// Extra arguments filter test files by substring: node scripts/run-tests.mjs engine golden
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const files = walk('test').sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Tests run with poisoned uninitialised buffers (NaN), so a kernel that reads an output it should overwrite fails.
const env = { ...process.env, LDM_POOL_POISON: process.env.LDM_POOL_POISON ?? '1' };
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
