// The metrics log: every logged value of every step as one JSON line ({"step": 12, "train/loss": 0.31, ...})
// in <run>/metrics.jsonl, and the loss curves (loss.svg) redrawn from it every few steps.
// On resume the lines after the resumed step (written after the last checkpoint by the interrupted run)
// are dropped, so the file reads as one uninterrupted run.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { lossCurveSvg, type Series } from './loss-curve.js';

export type LogRecord = { step: number } & Record<string, number>;

export function readMetrics(file: string): LogRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogRecord];
    } catch {
      return []; // a line cut by a crash
    }
  });
}

export class MetricsLogger {
  private history: LogRecord[] = [];

  constructor(readonly file: string, readonly curveFile: string | null, readonly curveKeys: string[], resumeStep: number | null = null) {
    if (resumeStep !== null) {
      this.history = readMetrics(file).filter((r) => r.step <= resumeStep);
      writeFileAtomic(file, new TextEncoder().encode(this.history.map((r) => JSON.stringify(r) + '\n').join('')));
    } else if (existsSync(file)) {
      this.history = readMetrics(file);
    }
  }

  log(rec: LogRecord): void {
    this.history.push(rec);
    appendFileSync(this.file, JSON.stringify(rec) + '\n');
  }

  get records(): readonly LogRecord[] {
    return this.history;
  }

  /** Redraw the loss curves (each key present in the log gets a panel). */
  writeCurve(): void {
    if (!this.curveFile) return;
    const series: Series[] = [];
    for (const k of this.curveKeys) {
      const points = this.history.filter((r) => typeof r[k] === 'number').map((r) => [r.step, r[k]] as [number, number]);
      if (points.length) series.push({ name: k, points });
    }
    writeFileAtomic(this.curveFile, new TextEncoder().encode(lossCurveSvg(series)));
  }
}
