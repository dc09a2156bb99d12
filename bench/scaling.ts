// Thread scaling (`npm run bench -- --scaling`): a case's kernel-alone run on 1 thread and on N threads,
// alternated in one process (a few runs per switch, after two warm-up runs), so that the machine's drifting
// load falls on both alike. Prints the speed-up as a ratio of medians and as a ratio of the fastest runs (on a
// shared machine a neighbour stalls an N-thread run at its join more often than a 1-thread run, so the two
// bracket what the pool does), and the share of the FMA peak each thread count reaches.

import { nativeAddon } from '../src/engine/kernels/native.js';

export interface Scaling {
  threads: number;
  /** Medians / fastest runs, ms, on 1 thread and on `threads`. */
  one: { median: number; min: number };
  many: { median: number; min: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Alternates 1 and `threads` threads over `rounds` switches of `perSwitch` timed runs each. */
export function measureScaling(run: () => void, threads: number, rounds: number, perSwitch = 5): Scaling {
  const n = nativeAddon();
  const before = n.info().threads;
  const ts: Record<'one' | 'many', number[]> = { one: [], many: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const which of ['one', 'many'] as const) {
        n.setThreads(which === 'one' ? 1 : threads);
        run();
        run();
        for (let i = 0; i < perSwitch; i++) {
          const t0 = performance.now();
          run();
          ts[which].push(performance.now() - t0);
        }
      }
    }
  } finally {
    n.setThreads(before);
  }
  const stat = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs) });
  return { threads, one: stat(ts.one), many: stat(ts.many) };
}

/** Switches so that each thread count gets about `seconds` of timed runs (one run takes `ms` on N threads). */
export function scalingRounds(ms: number, seconds = 4, perSwitch = 5): number {
  return Math.max(4, Math.min(40, Math.round((seconds * 1000) / (3 * ms * perSwitch))));
}

export function formatScaling(s: Scaling, flops: number, peaks: number[] | null): string {
  const gf = (ms: number) => flops / (ms * 1e6);
  const share = (ms: number, th: number) => (flops && peaks?.[th - 1] ? `, ${((100 * gf(ms)) / peaks[th - 1]).toFixed(0)} % of peak` : '');
  return `1 thread ${s.one.median.toFixed(2)} ms${share(s.one.median, 1)} · ${s.threads} threads ${s.many.median.toFixed(2)} ms${share(s.many.median, s.threads)}` +
    ` → ${(s.one.median / s.many.median).toFixed(2)}× (medians), ${(s.one.min / s.many.min).toFixed(2)}× (fastest runs)`;
}
