// A PyTorch twin kept running between single timed runs (bench/torch_bench.py serve): `npm run bench --
// --interleave` alternates one run of ours with one run of each twin, so a neighbour's load on a shared
// machine, which drifts over seconds, falls on both engines alike and the per-round ratios stay comparable.
// After each run the twin is given time to go idle: PyTorch's OpenMP and OpenBLAS workers keep spinning on
// every core for a while after their last op (up to ~0.1 s), which would otherwise land on our next run.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TorchServer {
  private proc: ChildProcessWithoutNullStreams;
  private lines: AsyncIterator<string>;
  private rl: Interface;
  private stderr = '';
  torchVersion = '';

  private constructor(python: string, script: string, name: string, threads: number, warmup: number) {
    this.proc = spawn(python, [script, 'serve', name, String(threads), String(warmup)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    this.rl = createInterface({ input: this.proc.stdout });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  private async line(what: string): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`torch ${what}: the twin exited (${this.stderr.trim().split('\n').pop() ?? 'no output'})`);
    return r.value;
  }

  /** Starts the twin of case `name` and waits until it has built the case and run `warmup` runs. */
  static async start(python: string, script: string, name: string, threads: number, warmup: number): Promise<TorchServer> {
    const s = new TorchServer(python, script, name, threads, warmup);
    const head = JSON.parse(await s.line(`${name} start`)) as { ready?: boolean; torch?: string; error?: string };
    if (!head.ready) {
      await s.close();
      throw new Error(`torch ${name}: ${head.error ?? 'not ready'}`);
    }
    s.torchVersion = head.torch ?? '';
    return s;
  }

  /** One timed run of the twin, in ms. */
  async run(): Promise<number> {
    this.proc.stdin.write('run\n');
    const ms = Number(await this.line('run'));
    if (!Number.isFinite(ms)) throw new Error('torch run: unreadable time');
    await this.idle();
    return ms;
  }

  /** CPU time of all the twin's threads, ns (Linux schedstat), or null where it cannot be read. */
  private cpuNs(): number | null {
    try {
      const dir = `/proc/${this.proc.pid}/task`;
      let ns = 0;
      for (const t of readdirSync(dir)) ns += Number(readFileSync(`${dir}/${t}/schedstat`, 'utf8').split(' ')[0]);
      return ns;
    } catch {
      return null;
    }
  }

  /** Waits (at most 1 s) until the twin's threads use under a tenth of a core over 5 ms. */
  private async idle(): Promise<void> {
    let last = this.cpuNs();
    for (let waited = 0; last !== null && waited < 1000; waited += 5) {
      await sleep(5);
      const now = this.cpuNs();
      if (now === null || now - last < 0.5e6) break;
      last = now;
    }
  }

  /**
   * Stops the twin and waits (at most 5 s) until its process has exited, so that its teardown and its
   * workers' last spinning do not land on the kernel-alone and thread-scaling runs that follow.
   */
  async close(): Promise<void> {
    this.rl.close();
    this.proc.stdin.end();
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill();
    await Promise.race([exited, sleep(5000)]);
  }
}
