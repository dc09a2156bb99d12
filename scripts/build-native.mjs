// Builds the native kernel addon during `npm install` (placeholder until native/ exists).
import { existsSync } from 'node:fs';
if (!existsSync('binding.gyp')) {
  console.log('ldm: no native addon in this checkout; the TypeScript kernels will be used');
}
