// Training progress: a bar on a terminal (cli-progress: step, loss, it/s, ETA), plain lines otherwise
// (one every `every` steps), both on stderr. Rates are measured over the steps of this process.

import cliProgress from 'cli-progress';

export interface Progress {
  update(step: number, values: Record<string, number>): void;
  /** Print a line without breaking the bar. */
  log(s: string): void;
  stop(): void;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.round(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${(s % 60).toFixed(1)}s`;
}

function shown(values: Record<string, number>): string {
  return Object.entries(values).map(([k, v]) => `${k} ${Math.abs(v) >= 1e3 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4)}`).join(' ');
}

export function createProgress(o: { total: number; start: number; tty: boolean; every: number; write?: (s: string) => void; quiet?: boolean }): Progress {
  const write = o.write ?? ((s: string) => void process.stderr.write(s));
  const t0 = Date.now();
  const rate = (step: number) => {
    const el = (Date.now() - t0) / 1000;
    return el > 0 ? (step - o.start) / el : 0;
  };
  if (o.quiet) return { update() {}, log() {}, stop() {} };
  if (!o.tty) {
    return {
      update(step, values) {
        if (step % o.every !== 0 && step !== o.total) return;
        const r = rate(step);
        write(`step ${step}/${o.total} ${shown(values)} ${r.toFixed(2)} it/s ETA ${formatDuration(r > 0 ? (o.total - step) / r : NaN)}\n`);
      },
      log: (s) => write(`${s}\n`),
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar({
    format: 'train [{bar}] {value}/{total} | {stats} | {rate} it/s | ETA {etaText}',
    stream: process.stderr, hideCursor: true, clearOnComplete: false, barsize: 24,
  }, cliProgress.Presets.shades_classic);
  bar.start(o.total, o.start, { stats: '', rate: '0.00', etaText: '?' });
  return {
    update(step, values) {
      const r = rate(step);
      bar.update(step, { stats: shown(values), rate: r.toFixed(2), etaText: formatDuration(r > 0 ? (o.total - step) / r : NaN) });
    },
    log(s) {
      bar.stop();
      write(`${s}\n`);
      bar.start(o.total, (bar as unknown as { value: number }).value, {});
    },
    stop: () => bar.stop(),
  };
}
