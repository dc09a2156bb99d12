// The package as another project sees it: `npm pack` of this checkout (its dist/ as `npm ci` built it),
// installed into a scratch project outside the repository, imported from a plain .mjs file and from a
// .ts file type-checked against the installed .d.ts with this repo's tsc, each sampling images in a few
// lines; and the installed `ldm` bin running from dist/ without tsx or TypeScript installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readImage } from '../../src/io/image.js';
import { tinyModelsDir } from './fixtures.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsc = path.join(repo, 'node_modules/typescript/bin/tsc');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  return { code: r.status, stdout: r.stdout ?? '', out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The README's "Use it from your code" example, as a user copies it. */
const README_JS = (() => {
  const m = /## Use it from your code\n\n```js\n([\s\S]*?)```/.exec(readFileSync(path.join(repo, 'README.md'), 'utf8'));
  assert.ok(m, 'README.md has a ```js example under "Use it from your code"');
  return m[1];
})();

const API_TS = `import { loadModel, sample, writePng, type SampleResult, type Image } from 'ldm-ts';
const m = loadModel(process.argv[2]);
const r: SampleResult = sample(m, { classLabel: [1, 2], seed: 9, steps: 2, batchSize: 1 });
const first: Image = r.images[0];
writePng('ts-first.png', first);
const seeds: number[] = r.perImage.map((p) => p.seed);
console.log(JSON.stringify({ seeds, width: first.width }));
`;

const BAD_TS = `import { loadModel, sample } from 'ldm-ts';
sample(loadModel(), { classLabel: 'seven', stepz: 2 });
`;

test('npm pack → npm install in a scratch project: import from .mjs and .ts, sample, run the ldm bin from dist', (t) => {
  if (!existsSync(path.join(repo, 'dist/index.js')) || !existsSync(path.join(repo, 'dist/index.d.ts'))) {
    const b = run(process.execPath, ['scripts/build-dist.mjs'], repo);
    assert.equal(b.code, 0, `dist/ is not built and building it failed:\n${b.out}`);
  }
  const work = mkdtempSync(path.join(tmpdir(), 'ldm-api-'));
  const packed = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], repo);
  assert.equal(packed.code, 0, packed.out);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, `npm pack wrote no tarball: ${packed.out}`);

  const proj = path.join(work, 'scratch');
  run('mkdir', ['-p', proj], work);
  writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', type: 'module', private: true }));
  const npmArgs = ['install', path.join(work, tgz!), '--ignore-scripts', '--no-audit', '--no-fund'];
  let inst = run('npm', [...npmArgs, '--offline'], proj);
  if (inst.code !== 0) inst = run('npm', [...npmArgs, '--prefer-offline'], proj);
  if (inst.code !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED/.test(inst.out)) return t.skip(`the dependencies are neither in the npm cache nor reachable: ${inst.out.split('\n')[0]}`);
  assert.equal(inst.code, 0, inst.out);
  const pkg = path.join(proj, 'node_modules/ldm-ts');
  assert.ok(existsSync(path.join(pkg, 'dist/index.js')) && !existsSync(path.join(pkg, 'src')), 'the package ships dist/, not the sources');
  assert.ok(!existsSync(path.join(proj, 'node_modules/tsx')) && !existsSync(path.join(proj, 'node_modules/typescript')), 'tsx / typescript are not installed for a user');

  const models = tinyModelsDir();
  const modelDir = path.join(models, 'digits');
  const env = { LDM_MODELS_DIR: path.join(work, 'no-models') };

  // Plain JavaScript: the README's example with the embedded models of LDM_MODELS_DIR (2 steps instead of 20:
  // the scratch install has no native kernels).
  assert.ok(README_JS.trim().split('\n').length <= 15, 'the example is at most 15 lines');
  assert.match(README_JS, /steps: 20,/);
  writeFileSync(path.join(proj, 'use.mjs'), README_JS.replace('steps: 20,', 'steps: 2,'));
  const js = run(process.execPath, ['use.mjs'], proj, { LDM_MODELS_DIR: models });
  assert.equal(js.code, 0, js.out);
  assert.deepEqual(js.stdout.trim().split('\n'), ['step 1/2', 'step 2/2']);
  for (const seed of [1, 2, 3, 4]) assert.equal(readImage(path.join(proj, `three-${seed}.png`)).width, 32);

  // TypeScript, checked against the installed .d.ts (one tsc run: use.ts is clean, bad.ts's wrong option type is
  // reported, so the types are real), compiled and run as JavaScript.
  writeFileSync(path.join(proj, 'use.ts'), API_TS);
  writeFileSync(path.join(proj, 'bad.ts'), BAD_TS);
  writeFileSync(path.join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'], typeRoots: [path.join(repo, 'node_modules/@types')] },
    files: ['use.ts', 'bad.ts'],
  }));
  const tc = run(process.execPath, [tsc, '-p', 'tsconfig.json'], proj);
  const errors = tc.out.trim().split('\n').filter((l) => /error TS/.test(l));
  assert.deepEqual(errors.filter((l) => !l.startsWith('bad.ts')), [], tc.out);
  assert.match(errors.join('\n'), /bad\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'number \| number\[\] \| undefined'/);
  const ts = run(process.execPath, ['out/use.js', modelDir], proj, env);
  assert.equal(ts.code, 0, ts.out);
  assert.deepEqual(JSON.parse(ts.stdout.trim().split('\n').at(-1)!), { seeds: [9, 10], width: 32 });

  // The bin, from dist/.
  const bin = path.join(proj, 'node_modules/.bin/ldm');
  const v = run(bin, ['--version'], proj);
  assert.equal(v.stdout.trim(), '0.1.0');
  const s = run(bin, ['sample', '--quiet', '-o', 'cli-out', '--steps', '2', '-s', '3', '--class', '4'], proj, { LDM_MODELS_DIR: models });
  assert.equal(s.code, 0, s.out);
  assert.deepEqual(readdirSync(path.join(proj, 'cli-out')), ['sample-0000-seed3.png']);
});
