#!/usr/bin/env node
// The `ldm` command. An installed package runs the compiled dist/ (no TypeScript at run time); a checkout
// (src/ present, tsx installed) runs the sources through tsx, so edits take effect without a rebuild.
// LDM_FROM_DIST=1 runs dist/ in a checkout too.
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/main.ts', import.meta.url);
const dist = new URL('../dist/cli/main.js', import.meta.url);

async function tsxRegister() {
  try {
    const { register } = await import('tsx/esm/api');
    return register;
  } catch {
    return undefined;
  }
}

let main;
const register = process.env.LDM_FROM_DIST === '1' || !existsSync(src) ? undefined : await tsxRegister();
if (register) {
  register();
  ({ main } = await import(src.href));
} else if (existsSync(dist)) {
  ({ main } = await import(dist.href));
} else {
  console.error('ldm: dist/ is not built and tsx is not installed (run npm install in the package folder)');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
