// The machine's measured FMA peak (GFLOP/s) for each ISA level the native build has and this CPU runs, at
// 1 … N threads: 12 independent multiply-add chains per thread (native/peak.inc), timed as the fastest of 7
// runs of ~0.15 s (a ceiling: a neighbour's load only slows a run, so the median would understate it). The
// bench divides each GEMM/conv/attention row's GFLOP/s by the active ISA's peak at its thread count.

import { nativeAddon } from '../src/engine/kernels/native.js';

export type Peaks = Record<string, number[]>;

export function measurePeaks(maxThreads: number): Peaks {
  const n = nativeAddon();
  const active = n.info().isa, threads = n.info().threads;
  const peaks: Peaks = {};
  try {
    for (const isa of n.info().isas) {
      if (!n.setIsa(isa)) continue;
      peaks[isa] = [];
      for (let th = 1; th <= maxThreads; th++) {
        n.setThreads(th);
        const out = new Float32Array(th + 1);
        // size the run: ~0.15 s at the first estimate
        let iters = 1e6;
        const t0 = performance.now();
        n.fmaPeak(iters, out);
        const flopsPerIter = th * 12 * out[0] * 2;
        iters = Math.max(1e5, Math.round((iters * 150) / Math.max(performance.now() - t0, 0.01)));
        const ts: number[] = [];
        for (let r = 0; r < 7; r++) {
          const t1 = performance.now();
          n.fmaPeak(iters, out);
          ts.push(performance.now() - t1);
        }
        peaks[isa].push((flopsPerIter * iters) / (Math.min(...ts) * 1e6));
      }
    }
  } finally {
    n.setIsa(active);
    n.setThreads(threads);
  }
  return peaks;
}

export function formatPeaks(p: Peaks): string {
  return Object.entries(p).map(([isa, gf]) => `${isa} ${gf.map((g, i) => `${g.toFixed(1)} (${i + 1} thr)`).join(', ')}`).join('; ');
}
