// Shared by the memory-under-load scripts: argument parsing, RSS after a full GC, and the report (the growth
// from after the warm-up to the end). Run the scripts with --expose-gc (they say so otherwise).

export function args(defaults: Record<string, number>): Record<string, number> {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in out) || i + 1 >= argv.length || !Number.isFinite(Number(argv[i + 1]))) {
      throw new Error(`usage: ${Object.keys(defaults).map((d) => `--${d} N`).join(' ')} (got ${argv[i]})`);
    }
    out[k] = Number(argv[++i]);
  }
  return out;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc --import tsx … (RSS is measured after a full GC)');
  process.exit(2);
}

const MiB = 1 << 20;

export interface Sample {
  at: number;
  rss: number;
  heap: number;
  arrays: number;
  seconds: number;
}

/** Records RSS / heap / typed-array memory after a full GC, and prints one line per sample. */
export class RssLog {
  readonly samples: Sample[] = [];
  private t0 = Date.now();

  constructor(readonly unit: string) {}

  take(at: number): Sample {
    gc!();
    gc!();
    const m = process.memoryUsage();
    const s = { at, rss: m.rss / MiB, heap: m.heapUsed / MiB, arrays: m.arrayBuffers / MiB, seconds: (Date.now() - this.t0) / 1000 };
    this.samples.push(s);
    console.log(`${this.unit} ${String(at).padStart(6)}  RSS ${s.rss.toFixed(1).padStart(7)} MiB  heap ${s.heap.toFixed(1).padStart(6)} MiB  typed arrays ${s.arrays.toFixed(1).padStart(6)} MiB  ${s.seconds.toFixed(0).padStart(5)} s`);
    return s;
  }

  /** The growth from the first sample at or after `warmup` to the last one. */
  report(warmup: number): { from: Sample; to: Sample } {
    const from = this.samples.find((s) => s.at >= warmup) ?? this.samples[0];
    const to = this.samples[this.samples.length - 1];
    const pct = (a: number, b: number) => `${b >= a ? '+' : ''}${(b - a).toFixed(1)} MiB (${b >= a ? '+' : ''}${((100 * (b - a)) / a).toFixed(1)} %)`;
    const peak = Math.max(...this.samples.filter((s) => s.at >= from.at).map((s) => s.rss));
    console.log(`after warm-up (${this.unit} ${from.at}) → end (${this.unit} ${to.at}): RSS ${from.rss.toFixed(1)} → ${to.rss.toFixed(1)} MiB ${pct(from.rss, to.rss)}, peak ${peak.toFixed(1)} MiB; heap ${pct(from.heap, to.heap)}; typed arrays ${pct(from.arrays, to.arrays)}`);
    return { from, to };
  }
}
