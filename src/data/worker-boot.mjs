// Entry of a loader worker thread: TypeScript support (tsx) first, then the worker itself. The main
// thread may run under `node --import tsx` or tsx's register() (bin/ldm.mjs); registering here covers both.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
