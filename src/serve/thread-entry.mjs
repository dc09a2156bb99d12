// Entry of a generation thread. In the compiled package (dist/) thread.js sits beside this file and runs
// as is; in a checkout TypeScript support (tsx) is registered first, as bin/ldm.mjs does for the main thread.
import { existsSync } from 'node:fs';

const js = new URL('./thread.js', import.meta.url);
if (existsSync(js)) {
  await import(js.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./thread.ts');
}
