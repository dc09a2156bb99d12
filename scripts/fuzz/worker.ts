// The fuzzer's child process: runs inputs one after another as the parent sends them and reports each
// outcome with the process's peak RSS so far (the parent restarts it after any failure).

import { existsSync } from 'node:fs';
import { runInput, type Format } from './targets.js';

interface Job { id: number; format: Format; file: string; work: string; canary: string }

process.on('message', (job: Job) => {
  const res = runInput(job.format, job.file, job.work);
  const executed = existsSync(job.canary);
  process.send!({ id: job.id, ...(executed ? { outcome: 'executed', message: 'the canary file appeared' } : res), maxRssKb: process.resourceUsage().maxRSS });
});
process.send!({ ready: true });
