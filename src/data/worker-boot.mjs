// Entry of a loader worker thread. In the compiled package (dist/) worker.js sits beside this file and
// runs as is; in a checkout TypeScript support (tsx) comes first — the main thread may run under
// `node --import tsx` or tsx's register() (bin/ldm.mjs); registering here covers both.
import { existsSync } from 'node:fs';

const js = new URL('./worker.js', import.meta.url);
if (existsSync(js)) {
  await import(js.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./worker.ts');
}
