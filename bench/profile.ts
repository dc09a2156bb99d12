// Where a bench case spends its time, kernel by kernel:
//   npx tsx bench/profile.ts CASE [RUNS] [--threads N]     (any UNet or autoencoder case of `npm run bench`)
//   npx tsx bench/autoencoder.ts --profile CASE [STEPS]    (the autoencoder steps, global step advancing)

import { pathToFileURL } from 'node:url';
import * as T from '../src/engine/index.js';
import { K } from '../src/engine/kernels/index.js';
import { nativeAddon, nativeAvailable } from '../src/engine/kernels/native.js';
import type { ConvGeometry } from '../src/engine/kernels/conv.js';
import type { GemmArgs } from '../src/engine/kernels/gemm.js';

/** A conv kernel call's geometry as one short key: 128→256 4×4/2 @16×16 (N 32). */
function convKey(kname: string, g: ConvGeometry): string {
  return `${kname} ${g.C}→${g.O} ${g.kh}×${g.kw}${g.sh > 1 ? `/${g.sh}` : ''} @${g.H}×${g.W} (N ${g.N})`;
}

/** A GEMM call's shape: gemm 1344×1024×448 ᵀ· (M×N×K, which operands are transposed, batch). */
function gemmKey(a: GemmArgs): string {
  return `gemm ${a.M}×${a.N}×${a.K}${a.transA ? ' Aᵀ' : ''}${a.transB ? ' Bᵀ' : ''}${a.batch > 1 ? ` (batch ${a.batch})` : ''}`;
}

/**
 * Wall time per kernel over `runs` calls of `run(k)` (k = 1…runs, after one warm-up call with k = 0): every entry
 * of the kernel table is wrapped with a timer (a kernel called from inside another is counted in the outer one);
 * the rest is the engine outside the kernels (op dispatch, autograd, allocation, GC). Conv kernels are split by
 * geometry, GEMMs by shape, binary ops by op and shape.
 */
export function profileKernels(name: string, runs: number, run: (k: number) => void): void {
  run(0);
  const saved = { ...K } as Record<string, unknown>;
  const times = new Map<string, { ms: number; calls: number }>();
  let depth = 0;
  const table = K as unknown as Record<string, unknown>;
  for (const [kname, fn] of Object.entries(saved)) {
    if (typeof fn !== 'function') continue;
    table[kname] = function (this: unknown, ...args: unknown[]) {
      if (depth > 0) return (fn as (...a: unknown[]) => unknown).apply(this, args);
      depth++;
      const t0 = performance.now();
      try {
        return (fn as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        depth--;
        let key = kname.startsWith('conv2d') ? convKey(kname, args[0] as ConvGeometry) : kname;
        if (kname === 'gemm') key = gemmKey(args[0] as GemmArgs);
        if (kname === 'binary') {
          const [op, a, b, , shape] = args as [string, { strides: number[] }, { strides: number[] }, unknown, number[]];
          key = `binary ${op} [${shape}]${[...a.strides, ...b.strides].includes(0) ? ' broadcast' : ''}`;
        }
        const e = times.get(key) ?? { ms: 0, calls: 0 };
        e.ms += performance.now() - t0;
        e.calls++;
        times.set(key, e);
      }
    };
  }
  const t0 = performance.now();
  try {
    for (let k = 1; k <= runs; k++) run(k);
  } finally {
    Object.assign(K, saved);
  }
  const total = (performance.now() - t0) / runs;
  const rows = [...times].map(([k, v]) => ({ k, ms: v.ms / runs, calls: v.calls / runs })).sort((a, b) => b.ms - a.ms);
  const inKernels = rows.reduce((a, b) => a + b.ms, 0);
  const byKernel = new Map<string, number>();
  for (const x of rows) byKernel.set(x.k.split(' ')[0], (byKernel.get(x.k.split(' ')[0]) ?? 0) + x.ms);
  console.log(`${name}: ${total.toFixed(0)} ms per run (${runs} runs, ${T.backendName()} backend); kernels ${inKernels.toFixed(0)} ms, outside the kernels ${(total - inKernels).toFixed(0)} ms`);
  console.log('per kernel: ' + [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `${k} ${v.toFixed(0)} ms (${((100 * v) / total).toFixed(0)} %)`).join(', '));
  const line = (x: { k: string; ms: number; calls: number }) => `  ${x.ms.toFixed(1).padStart(7)} ms  ${((100 * x.ms) / total).toFixed(1).padStart(5)} %  ${x.calls.toFixed(0).padStart(4)}×  ${x.k}`;
  for (const x of rows.slice(0, 25)) console.log(line(x));
  const bin = rows.filter((x) => x.k.startsWith('binary'));
  const broadcast = bin.filter((x) => x.k.endsWith('broadcast')).reduce((a, b) => a + b.ms, 0);
  console.log(`elementwise binary ops: ${bin.reduce((a, b) => a + b.ms, 0).toFixed(0)} ms over ${bin.length} op/shape pairs, ${broadcast.toFixed(0)} ms of it with a broadcast operand; the largest:`);
  for (const x of bin.slice(0, 8)) console.log(line(x));
}

async function main(): Promise<void> {
  const [name, runs] = [process.argv[2], Number(process.argv[3] ?? 5) || 5];
  const ti = process.argv.indexOf('--threads');
  if (ti >= 0 && T.backendName() === 'native' && nativeAvailable()) nativeAddon().setThreads(Number(process.argv[ti + 1]));
  const { unetCases } = await import('./unet.js');
  const { autoencoderCases } = await import('./autoencoder.js');
  const all = [...(await unetCases()), ...(await autoencoderCases())];
  const c = all.find((x) => x.name === name);
  if (!c) {
    console.error(`usage: npx tsx bench/profile.ts CASE [RUNS] [--threads N]; CASE one of ${all.map((x) => x.name).join(', ')}`);
    process.exit(2);
  }
  const run = c.setup();
  profileKernels(name, runs, () => run());
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) void main();
