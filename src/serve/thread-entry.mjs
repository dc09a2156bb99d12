// Entry of a generation thread. In the compiled package (dist/) thread.js sits beside this file and runs
// as is; in a checkout the TypeScript source runs through tsx, as in the main thread (bin/ldm.mjs).
import { existsSync } from 'node:fs';

const js = new URL('./thread.js', import.meta.url);
if (existsSync(js)) {
  await import(js.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./thread.ts');
}
