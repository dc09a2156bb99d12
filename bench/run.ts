// `npm run bench`: the engine's kernels side by side with PyTorch (CPU) on this machine.
//
// Each case runs through the engine's public ops (allocation and autograd included), then the same work in
// PyTorch: /usr/bin/python3 bench/torch_bench.py is spawned right after it with the same thread count, so
// both see the same machine state. Times are medians of --reps runs after --warmup runs; ratio = torch time
// / our time (> 1: we are faster). Not a test: nothing is asserted.
//
// The UNet forward cases also run in onnxruntime-node (bench/ort.ts: the torch twin exported to ONNX), and
// rows with a flop count print their share of the machine's measured FMA peak (bench/peak.ts) for the active
// ISA at the same thread count.
//
// Options: --threads N (default: the native pool's size), --reps N (at least 10; fast cases run more, up to
//          200, for ~0.4 s of timing), --warmup N (3, likewise scaled), --only a,b,
//          --no-torch, --no-ort, --python PATH (/usr/bin/python3), --record (write bench/RESULTS.md),
//          --interleave (alternate single runs of ours and of each torch twin instead of timing them one after
//          the other: steadier ratios on a machine whose load drifts; bench/torch_server.ts),
//          --scaling (also time each kernel-alone case on 1 thread and on N threads, alternated in one process:
//          bench/scaling.ts),
//          --check-unet / --check-ae (first check the UNet / autoencoder twins numerically: bench/unet.ts,
//          bench/autoencoder.ts).
// LDM_BACKEND=ts benchmarks the TypeScript kernels instead (slow: use --only and small --reps).

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/engine/index.js';
import type { FloatArray } from '../src/engine/dtype.js';
import { nativeAddon, nativeAvailable } from '../src/engine/kernels/native.js';
import { Adam, Conv2d, GroupNorm, Layer } from '../src/nn/index.js';
import { ORT_VERSION, runOrt } from './ort.js';
import { formatPeaks, measurePeaks, type Peaks } from './peak.js';
import { autoencoderCases } from './autoencoder.js';
import { formatScaling, measureScaling, scalingRounds } from './scaling.js';
import { TorchServer } from './torch_server.js';
import { unetCases } from './unet.js';

const here = dirname(fileURLToPath(import.meta.url));

// ---- options -------------------------------------------------------------------------------------------

function opt(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const native = T.backendName() === 'native' && nativeAvailable();
const threads = Number(opt('threads') ?? (native ? nativeAddon().info().threads : 1));
if (native) nativeAddon().setThreads(threads);
const reps = Number(opt('reps') ?? 10);
const warmup = Number(opt('warmup') ?? 3);
const only = opt('only')?.split(',');
const python = opt('python') ?? '/usr/bin/python3';
const withTorch = !flag('no-torch');
const withOrt = !flag('no-ort');
const interleave = flag('interleave');
const scaling = flag('scaling') && native && threads > 1;

// ---- cases ---------------------------------------------------------------------------------------------

export interface BenchCase {
  name: string;
  what: string;
  /** Floating-point operations of one run (0: memory-bound, no GFLOP/s column). */
  flops: number;
  /** Builds the inputs and returns one run. */
  setup: () => () => void;
  /** torch_bench.py cases to compare with (the first is the ratio's reference). */
  torch: string[];
  /** The same work as raw kernel calls into preallocated buffers (no tensor allocation, no autograd). */
  kernel?: () => () => void;
  /** Also time the torch twin exported to ONNX in onnxruntime (torch_bench.py onnx_export knows the case). */
  onnx?: boolean;
  /** The torch_bench.py case whose ONNX export to time (default: this case's name). */
  ortCase?: string;
}

const gen = new T.Generator(1234);
const randn = (shape: number[], scale = 1) => T.keep(T.mulScalar(T.randn(shape, gen), scale));

const f32 = (t: T.Tensor) => t.data as FloatArray;

function clearGrads(ts: T.Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/** Runs fn inside tidy and drops every tensor it made (results included). */
const scoped = (fn: () => unknown) => () => {
  T.tidy(() => {
    fn();
  });
};

class TinyNet extends Layer {
  c1 = new Conv2d(32, 64, 3, { padding: 1, gen });
  n1 = new GroupNorm(32, 64);
  c2 = new Conv2d(64, 64, 3, { padding: 1, gen });
  n2 = new GroupNorm(32, 64);
  c3 = new Conv2d(64, 128, 3, { stride: 2, padding: 1, gen });
  n3 = new GroupNorm(32, 128);
  c4 = new Conv2d(128, 32, 1, { gen });
  forward(x: T.Tensor): T.Tensor {
    const gnSilu = (n: GroupNorm, h: T.Tensor) => T.groupNorm(h, n.num_groups, n.weight, n.bias, n.eps, true);
    let h = gnSilu(this.n1, this.c1.forward(x));
    h = gnSilu(this.n2, this.c2.forward(h));
    h = gnSilu(this.n3, this.c3.forward(h));
    return this.c4.forward(h);
  }
}

const CONV_FLOPS = 2 * 4 * 128 * 128 * 9 * 32 * 32;
const ATTN_FLOPS = 4 * 8 * 1024 * 1024 * 64; // q kᵀ and p v
const TINY_FLOPS = 3 * 2 * 8 * (64 * 32 * 9 * 1024 + 64 * 64 * 9 * 1024 + 128 * 64 * 9 * 256 + 32 * 128 * 256);

const CASES: BenchCase[] = [
  {
    name: 'sgemm', what: 'matmul 1024×1024 · 1024×1024', flops: 2 * 1024 ** 3, torch: ['sgemm_onednn', 'sgemm'],
    setup: () => {
      const a = randn([1024, 1024]), b = randn([1024, 1024]);
      return scoped(() => T.matmul(a, b));
    },
    kernel: () => {
      const a = f32(randn([1024, 1024])), b = f32(randn([1024, 1024])), c = new Float32Array(1024 * 1024);
      return () => T.K.gemm({ transA: false, transB: false, M: 1024, N: 1024, K: 1024, alpha: 1, A: a, aOffset: 0, lda: 1024, strideA: 0,
        B: b, bOffset: 0, ldb: 1024, strideB: 0, beta: 0, C: c, cOffset: 0, ldc: 1024, strideC: 0, batch: 1 });
    },
  },
  {
    name: 'conv_fwd', what: 'conv2d 3×3, x 4×128×32×32 → 128 ch, forward', flops: CONV_FLOPS, torch: ['conv_fwd'],
    setup: () => {
      const x = randn([4, 128, 32, 32]), w = randn([128, 128, 3, 3], 0.03), b = randn([128]);
      return scoped(() => T.noGrad(() => T.conv2d(x, w, b, { padding: 1 })));
    },
    kernel: () => {
      const x = f32(randn([4, 128, 32, 32])), w = f32(randn([128, 128, 3, 3], 0.03)), b = f32(randn([128])), out = new Float32Array(4 * 128 * 1024);
      const g = { N: 4, C: 128, H: 32, W: 32, O: 128, kh: 3, kw: 3, sh: 1, sw: 1, padTop: 1, padLeft: 1, OH: 32, OW: 32 };
      return () => T.K.conv2dForward(g, x, w, b, out);
    },
  },
  {
    name: 'conv_fwdbwd', what: 'conv2d 3×3 forward + backward (x, w, b)', flops: 3 * CONV_FLOPS, torch: ['conv_fwdbwd'],
    setup: () => {
      const x = T.requireGrad(randn([4, 128, 32, 32])), w = T.requireGrad(randn([128, 128, 3, 3], 0.03)), b = T.requireGrad(randn([128]));
      const g = randn([4, 128, 32, 32]);
      return scoped(() => {
        T.conv2d(x, w, b, { padding: 1 }).backward(g);
        clearGrads([x, w, b]);
      });
    },
  },
  {
    name: 'attn_fwd', what: 'attention 8 × 1024 tokens × 64, forward', flops: ATTN_FLOPS, torch: ['attn_fwd'],
    setup: () => {
      const q = randn([8, 1024, 64]), k = randn([8, 1024, 64]), v = randn([8, 1024, 64]);
      return scoped(() => T.noGrad(() => T.attention(q, k, v, 0.125)));
    },
    kernel: () => {
      const [q, k, v] = [0, 1, 2].map(() => f32(randn([8, 1024, 64])));
      const out = new Float32Array(8 * 1024 * 64), lse = new Float32Array(8 * 1024);
      return () => T.K.attentionForward(q, k, v, 8, 1024, 1024, 64, 64, 0.125, out, lse);
    },
  },
  {
    name: 'attn_fwdbwd', what: 'attention forward + backward (q, k, v)', flops: 3 * ATTN_FLOPS, torch: ['attn_fwdbwd'],
    setup: () => {
      const q = T.requireGrad(randn([8, 1024, 64])), k = T.requireGrad(randn([8, 1024, 64])), v = T.requireGrad(randn([8, 1024, 64]));
      const g = randn([8, 1024, 64]);
      return scoped(() => {
        T.attention(q, k, v, 0.125).backward(g);
        clearGrads([q, k, v]);
      });
    },
  },
  {
    name: 'gn_silu_fwd', what: 'group norm (32 groups) + SiLU, 4×128×32×32, forward', flops: 0, torch: ['gn_silu_fwd'],
    setup: () => {
      const x = randn([4, 128, 32, 32]), w = T.keep(T.addScalar(randn([128], 0.1), 1)), b = randn([128], 0.1);
      return scoped(() => T.noGrad(() => T.groupNorm(x, 32, w, b, 1e-5, true)));
    },
    kernel: () => {
      const x = f32(randn([4, 128, 32, 32])), w = f32(T.keep(T.addScalar(randn([128], 0.1), 1))), b = f32(randn([128], 0.1));
      const out = new Float32Array(4 * 128 * 1024), mean = new Float32Array(4 * 32), rstd = new Float32Array(4 * 32);
      return () => T.K.groupNormForward(x, 4, 128, 1024, 32, 1e-5, w, b, true, out, mean, rstd);
    },
  },
  {
    name: 'gn_silu_fwdbwd', what: 'group norm + SiLU forward + backward (x, w, b)', flops: 0, torch: ['gn_silu_fwdbwd'],
    setup: () => {
      const x = T.requireGrad(randn([4, 128, 32, 32])), w = T.requireGrad(T.keep(T.addScalar(randn([128], 0.1), 1))), b = T.requireGrad(randn([128], 0.1));
      const g = randn([4, 128, 32, 32]);
      return scoped(() => {
        T.groupNorm(x, 32, w, b, 1e-5, true).backward(g);
        clearGrads([x, w, b]);
      });
    },
  },
  {
    name: 'train_step', what: 'tiny conv/GN+SiLU net, batch 8×32×32×32: forward, MSE, backward, Adam', flops: TINY_FLOPS, torch: ['train_step'],
    setup: () => {
      const net = new TinyNet();
      const optim = new Adam(net.parameters(), { lr: 1e-4 });
      const x = randn([8, 32, 32, 32]), target = randn([8, 32, 16, 16]);
      return () => {
        optim.zeroGrad();
        T.tidy(() => {
          T.mseLoss(net.forward(x), target).backward();
        });
        optim.step();
      };
    },
  },
];

// ---- measurement -----------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Fast cases get more runs (at least ~0.4 s of timed work, at most 200 runs) so the median is stable. */
function calibrate(run: () => void): { n: number; w: number; ms: number } {
  const t0 = performance.now();
  run();
  const t = Math.max(performance.now() - t0, 1e-3);
  return { n: Math.min(200, Math.max(reps, Math.ceil(400 / t))), w: Math.min(100, Math.max(warmup, Math.ceil(100 / t))), ms: t };
}

function timeIt(run: () => void, n: number, w: number): { median: number; min: number } {
  for (let i = 0; i < w; i++) run();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    run();
    ts.push(performance.now() - t0);
  }
  return { median: median(ts), min: Math.min(...ts) };
}

interface TorchResult { median_ms?: number; min_ms?: number; torch?: string; error?: string }

function runTorch(name: string, n: number, w: number): TorchResult {
  const r = spawnSync(python, [join(here, 'torch_bench.py'), name, String(threads), String(n), String(w)], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return { error: (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? 'failed').slice(0, 200) };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as TorchResult;
  } catch {
    return { error: `unreadable output: ${r.stdout.slice(0, 200)}` };
  }
}

/**
 * --interleave: each round times one run of ours, then one run of each torch twin (kept running by
 * TorchServer), so the machine's drifting load falls on both alike; medians over the rounds. Each timed run
 * starts once the other engine's threads have gone idle (bench/torch_server.ts). A short case (under HOT_MS)
 * runs once untimed right before each timed run, on both engines: on this VM a run that starts after ~0.1 s
 * of idle cores takes up to 2.7× as long (4.3 → 11.5 ms for conv_fwd), which a sampling or training loop,
 * running back to back, never sees.
 */
const HOT_MS = 200;
async function interleaved(c: BenchCase, run: () => void, n: number, w: number, ms: number) {
  for (let i = 0; i < w; i++) run();
  const servers: (TorchServer | Error)[] = [];
  for (const tn of c.torch) servers.push(await TorchServer.start(python, join(here, 'torch_bench.py'), tn, threads, w).catch((e: Error) => e));
  const ours: number[] = [];
  const theirs: number[][] = c.torch.map(() => []);
  const hot = ms < HOT_MS;  // the calibration run's time
  try {
    for (let i = 0; i < n; i++) {
      if (hot) run();
      const t0 = performance.now();
      run();
      ours.push(performance.now() - t0);
      for (const [k, s] of servers.entries()) {
        if (!(s instanceof TorchServer)) continue;
        if (hot) await s.run();
        theirs[k].push(await s.run());
      }
    }
  } finally {
    for (const s of servers) if (s instanceof TorchServer) await s.close();
  }
  return {
    ours: { median: median(ours), min: Math.min(...ours) },
    torch: c.torch.map((tn, k) => {
      const s = servers[k];
      return s instanceof Error ? { name: tn, ms: null, error: s.message.slice(0, 200) } : { name: tn, ms: median(theirs[k]) };
    }),
    torchVersion: servers.find((s): s is TorchServer => s instanceof TorchServer)?.torchVersion ?? '',
  };
}

interface Row {
  name: string; what: string; ms: number; minMs: number; gflops: number | null; kernelMs: number | null;
  torch: { name: string; ms: number | null; error?: string }[];
  /** Share of the measured FMA peak (GFLOP/s ÷ peak), when both are known. */
  peak: number | null;
  ort?: { ms: number | null; error?: string };
  /** --scaling: 1 ↔ N threads, formatted (bench/scaling.ts). */
  scaling?: string;
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

async function main(): Promise<void> {
  const cases = [...CASES];
  cases.push(...(await unetCases()));
  cases.push(...(await autoencoderCases()));
  const selected = cases.filter((c) => !only || only.includes(c.name));
  const info = native ? nativeAddon().info() : null;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`ldm-ts bench: backend ${T.backendName()}${info ? ` (${info.isa})` : ''}, ${threads} thread(s), ${cpu}, node ${process.version}`);
  console.log(`median of ≥ ${reps} runs after ≥ ${warmup} warm-up runs (same counts for torch and onnxruntime${interleave ? '; torch runs interleaved with ours' : ''}); ratio = their ms / ours ms (> 1: we are faster)`);
  const peaks: Peaks | null = native && 'fmaPeak' in nativeAddon() ? measurePeaks(threads) : null;
  const peak = peaks && info ? peaks[info.isa]?.[threads - 1] ?? null : null;
  console.log(peaks ? `measured FMA peak, GFLOP/s: ${formatPeaks(peaks)}\n` : 'FMA peak not measured (no native addon with fmaPeak)\n');
  const rows: Row[] = [];
  let torchVersion = '';
  for (const c of selected) {
    const run = c.setup();
    const { n, w, ms } = calibrate(run);
    const torchRows: Row['torch'] = [];
    let t: { median: number; min: number };
    if (withTorch && interleave) {
      const r = await interleaved(c, run, n, w, ms);
      t = r.ours;
      torchRows.push(...r.torch);
      torchVersion = r.torchVersion || torchVersion;
    } else {
      t = timeIt(run, n, w);
      if (withTorch) {
        for (const tn of c.torch) {
          const r = runTorch(tn, n, w);
          if (r.torch) torchVersion = r.torch;
          torchRows.push({ name: tn, ms: r.median_ms ?? null, error: r.error });
        }
      }
    }
    const kt = c.kernel ? timeIt(c.kernel(), n, w).median : null;
    const gflops = c.flops ? c.flops / (t.median * 1e6) : null;
    const row: Row = { name: c.name, what: c.what, ms: t.median, minMs: t.min, gflops, kernelMs: kt, torch: torchRows, peak: gflops && peak ? gflops / peak : null };
    if (c.onnx && withOrt) {
      const r = runOrt(c.ortCase ?? c.name, threads, n, w, python);
      row.ort = { ms: r.median_ms ?? null, error: r.error };
    }
    rows.push(row);
    const tcols = row.torch.map((x) => (x.ms === null ? `torch ${x.name}: ${x.error}` : `torch ${x.name} ${fmtMs(x.ms)} ms → ratio ${(x.ms / row.ms).toFixed(2)}×`));
    if (row.ort) tcols.push(row.ort.ms === null ? `onnxruntime: ${row.ort.error}` : `onnxruntime ${fmtMs(row.ort.ms)} ms → ratio ${(row.ort.ms / row.ms).toFixed(2)}×`);
    const kcol = kt !== null ? `  (kernel alone ${fmtMs(kt)} ms${c.flops ? `, ${(c.flops / (kt * 1e6)).toFixed(1)} GFLOP/s${peak ? `, ${pct(c.flops / (kt * 1e6) / peak)} of peak` : ''}` : ''})` : '';
    const gcol = row.gflops ? ` ${row.gflops.toFixed(1).padStart(6)} GFLOP/s${row.peak !== null ? ` (${pct(row.peak)} of peak)` : ''}` : '                ';
    console.log(`${c.name.padEnd(19)} ${fmtMs(row.ms).padStart(8)} ms${gcol}   ${tcols.join('   ')}${kcol}`);
    if (scaling && c.kernel && kt !== null) {
      row.scaling = formatScaling(measureScaling(c.kernel(), threads, scalingRounds(kt)), c.flops, peaks && info ? peaks[info.isa] ?? null : null);
      console.log(`${''.padEnd(19)} scaling: ${row.scaling}`);
    }
  }
  if (flag('record')) record(rows, { backend: `${T.backendName()}${info ? ` (${info.isa})` : ''}`, cpu, torchVersion, peaks });
}

const pct = (x: number) => `${(100 * x).toFixed(0)} %`;

function record(rows: Row[], env: { backend: string; cpu: string; torchVersion: string; peaks: Peaks | null }): void {
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'native', 'src/engine', 'bench', ':!bench/RESULTS.md'], { encoding: 'utf8' }).stdout.trim() ? ' (+ uncommitted changes)' : '';
  const lines = [
    '| case | what | ours ms | GFLOP/s (of peak) | torch ms | ratio | onnxruntime ms (ratio) | kernel alone ms (ratio) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const t0 = r.torch[0];
    const kcell = r.kernelMs !== null ? `${fmtMs(r.kernelMs)}${t0?.ms != null ? ` (${(t0.ms / r.kernelMs).toFixed(2)}×)` : ''}` : '';
    const gcell = r.gflops ? `${r.gflops.toFixed(1)}${r.peak !== null ? ` (${pct(r.peak)})` : ''}` : '—';
    const ocell = r.ort ? (r.ort.ms != null ? `${fmtMs(r.ort.ms)} (${(r.ort.ms / r.ms).toFixed(2)}×)` : 'n/a') : '';
    lines.push(`| ${r.name} | ${r.what} | ${fmtMs(r.ms)} | ${gcell} | ${t0?.ms != null ? fmtMs(t0.ms) : '—'} | ${t0?.ms != null ? (t0.ms / r.ms).toFixed(2) + '×' : '—'} | ${ocell} | ${kcell} |`);
    for (const t of r.torch.slice(1)) {
      lines.push(`|  | (vs torch \`${t.name}\`) |  |  | ${t.ms != null ? fmtMs(t.ms) : '—'} | ${t.ms != null ? (t.ms / r.ms).toFixed(2) + '×' : '—'} | | |`);
    }
  }
  const scaled = rows.filter((r) => r.scaling);
  if (scaled.length) {
    lines.push('', `Thread scaling, kernel alone, 1 ↔ ${threads} threads alternated in one process:`, '');
    for (const r of scaled) lines.push(`- ${r.name}: ${r.scaling}`);
  }
  const table = lines.join('\n');
  const path = join(here, 'RESULTS.md');
  const head = `## Latest run\n\ncommit ${commit}${dirty}, ${new Date().toISOString().slice(0, 10)}; ${env.cpu}, ${threads} thread(s); backend ${env.backend}; ` +
    `node ${process.version}; torch ${env.torchVersion || 'n/a'} (${python}); onnxruntime-node ${ORT_VERSION} (UNet forward rows); median of ≥ ${reps} runs after ≥ ${warmup} warm-up runs (fast cases more, same for torch and onnxruntime${interleave ? '; torch interleaved run by run' : ''}).\n` +
    `${env.peaks ? `\nMeasured FMA peak, GFLOP/s: ${formatPeaks(env.peaks)}.\n` : ''}\n${table}\n`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    text = '';
  }
  const marker = '## Latest run';
  const i = text.indexOf(marker);
  if (i < 0) text = `${text.trimEnd()}\n\n${head}`;
  else {
    const j = text.indexOf('\n## ', i + marker.length);
    text = text.slice(0, i) + head + (j >= 0 ? text.slice(j) : '');
  }
  writeFileSync(path, text.trimStart());
  console.log(`\nrecorded in ${path}`);
}

await main();
