// The onnxruntime column of `npm run bench`: the UNet forward cases' PyTorch twins exported to ONNX
// (torch_bench.py onnx_export, opset 17) and timed by onnxruntime-node's CPU execution provider in a child
// process (bench/ort_run.mjs), with the case's thread count and run counts. onnxruntime-node is installed on
// first use into a cache folder, never as a dependency of the package (its CUDA download skipped); where it
// cannot be installed or a model cannot be exported, the column says why in one line.
//
// Cache: $LDM_BENCH_CACHE, default ~/.cache/ldm-ts/bench (onnxruntime-node-<version>/, onnx/<case>.onnx).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ORT_VERSION = '1.30.0';
const here = dirname(fileURLToPath(import.meta.url));
const cache = process.env.LDM_BENCH_CACHE ?? join(homedir(), '.cache', 'ldm-ts', 'bench');

export interface OrtResult { median_ms?: number; min_ms?: number; ort?: string; error?: string }

const lastLine = (s: string | null | undefined) => (s ?? '').trim().split('\n').pop()?.slice(0, 200) ?? '';

let installed: { dir?: string; error?: string } | undefined;

/** The folder holding node_modules/onnxruntime-node (installed now if missing), or why it is not there. */
function ortDir(): { dir?: string; error?: string } {
  if (installed) return installed;
  const dir = join(cache, `onnxruntime-node-${ORT_VERSION}`);
  const pkg = join(dir, 'node_modules', 'onnxruntime-node', 'package.json');
  if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).version === ORT_VERSION) return (installed = { dir });
  console.log(`installing onnxruntime-node ${ORT_VERSION} into ${dir} (once; CPU only) …`);
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const r = spawnSync('npm', ['install', '--prefix', tmp, '--no-audit', '--no-fund', '--no-package-lock', `onnxruntime-node@${ORT_VERSION}`], {
    encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip' },
  });
  if (r.status !== 0 || !existsSync(join(tmp, 'node_modules', 'onnxruntime-node', 'package.json'))) {
    return (installed = { error: `onnxruntime-node ${ORT_VERSION} could not be installed (npm: ${lastLine(r.stderr) || r.error?.message || 'failed'})` });
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return (installed = { dir });
}

/** The case's twin as ONNX (exported once per torch version), or why not. */
function onnxFile(name: string, python: string): { file?: string; error?: string } {
  const ver = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (ver.status !== 0) return { error: `no torch for the ONNX export (${python}: ${lastLine(ver.stderr)})` };
  const file = join(cache, 'onnx', `${name}-torch${ver.stdout.trim()}.onnx`);
  if (existsSync(file) && existsSync(`${file}.json`)) return { file };
  mkdirSync(dirname(file), { recursive: true });
  console.log(`exporting the ${name} twin to ${file} (once) …`);
  const r = spawnSync(python, [join(here, 'torch_bench.py'), 'onnx_export', name, file], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(`${file}.json`)) return { error: `ONNX export failed: ${lastLine(r.stderr)}` };
  return { file };
}

/** Median / min ms of `n` onnxruntime runs of the case after `w` warm-up runs, on `threads` intra-op threads. */
export function runOrt(name: string, threads: number, n: number, w: number, python: string): OrtResult {
  const o = ortDir();
  if (!o.dir) return { error: o.error };
  const m = onnxFile(name, python);
  if (!m.file) return { error: m.error };
  const r = spawnSync(process.execPath, [join(here, 'ort_run.mjs'), o.dir, m.file, String(threads), String(n), String(w)], { encoding: 'utf8' });
  if (r.status !== 0) return { error: `onnxruntime run failed: ${lastLine(r.stderr)}` };
  try {
    return JSON.parse(lastLine(r.stdout)) as OrtResult;
  } catch {
    return { error: `unreadable output: ${r.stdout.slice(0, 200)}` };
  }
}
