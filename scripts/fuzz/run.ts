// npm run fuzz -- [--per-format N] [--formats safetensors,ckpt,yaml,png,jpeg] [--seed S] [--time-limit SECONDS]
//                 [--jobs J] [--timeout-ms 6000] [--max-rss-mb 1024] [--save DIR] [--replay FORMAT:INDEX]
//
// Mutates valid safetensors, .ckpt, YAML configs and PNG/JPEG files and feeds each mutant to the product's
// loaders in a forked worker (2 GB heap, a time limit per input). Outcomes: clean error (an Error naming the
// file), loaded, crash (signal or uncaught), hang, memory (peak RSS over the bound), unhelpful message,
// inconsistent (readers disagree / convert wrote a file from a checkpoint that does not load / left files
// behind), executed (a pickle's forbidden global ran: the canary file appeared). Input i of a format is made
// from a generator seeded by (seed, format, i), so `--replay ckpt:123` rebuilds exactly that input. Every
// non-passing input is saved under --save with its description. Exit status 1 when any input failed.

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generic, Rng } from './rng.js';
import { mutate, seeds } from './formats.js';
import { EXT, FORMATS, OUTCOMES, type Format, type Outcome } from './targets.js';

function args(): Record<string, string> {
  const a = process.argv.slice(2);
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (!a[i].startsWith('--')) throw new Error(`fuzz: unexpected argument ${a[i]}`);
    out[a[i].slice(2)] = a[i + 1];
    i++;
  }
  return out;
}

const opt = args();
const perFormat = Number(opt['per-format'] ?? 200);
const formats = (opt.formats ?? FORMATS.join(',')).split(',') as Format[];
for (const f of formats) if (!FORMATS.includes(f)) throw new Error(`fuzz: unknown format ${f} (known: ${FORMATS.join(', ')})`);
const seed = Number(opt.seed ?? 1);
const timeLimit = Number(opt['time-limit'] ?? 3600) * 1000;
const jobs = Number(opt.jobs ?? 1);
const timeoutMs = Number(opt['timeout-ms'] ?? 6000);
const maxRssKb = Number(opt['max-rss-mb'] ?? 1024) * 1024;
const root = mkdtempSync(path.join(os.tmpdir(), 'ldm-fuzz-'));
const saveDir = opt.save ?? path.join(root, 'failures');
const canary = path.join(root, 'CANARY-executed');

function hash(...xs: (number | string)[]): number {
  let h = 2166136261;
  for (const c of xs.join(':')) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** Input `i` of `format`: a mutant of one seed, reproducible from (seed, format, i). */
function makeInput(format: Format, i: number): { bytes: Uint8Array; how: string; seedName: string } {
  const r = new Rng(hash(seed, format, i));
  const ss = seeds(format);
  const s = ss[r.int(ss.length)];
  let m = mutate(format, s, r, canary);
  // a second mutation now and then
  if (r.chance(0.15)) {
    let m2: { bytes: Uint8Array; how: string };
    try { m2 = mutate(format, { ...s, path: '', bytes: m.bytes }, r, canary); } catch { m2 = { bytes: generic(m.bytes, r), how: 'generic bytes' }; }
    m = { bytes: m2.bytes, how: `${m.how}; then ${m2.how}` };
  }
  return { ...m, seedName: s.name };
}

interface Worker { child: ChildProcess; stderr: string; busy: boolean }

function startWorker(): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(import.meta.dirname, 'worker.ts'), [], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=2048', '--stack-size=984'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const w: Worker = { child, stderr: '', busy: false };
    child.stderr!.on('data', (d) => { w.stderr = (w.stderr + d).slice(-4000); });
    child.once('message', () => resolve(w));
    child.once('exit', (code, sig) => reject(new Error(`fuzz worker did not start (${code ?? sig}): ${w.stderr}`)));
  });
}

interface Done { outcome: Outcome; message?: string; rssMb: number }

function runOne(w: Worker, id: number, format: Format, file: string, work: string): Promise<Done> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (d: Done) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      w.child.removeListener('message', onMsg);
      w.child.removeListener('exit', onExit);
      resolve(d);
    };
    const onMsg = (m: { id: number; outcome: Outcome; message?: string; maxRssKb: number }) => {
      if (m.id !== id) return;
      if (m.maxRssKb > maxRssKb && m.outcome !== 'executed') finish({ outcome: 'memory', message: `peak RSS ${Math.round(m.maxRssKb / 1024)} MB (${m.outcome}: ${m.message ?? ''})`, rssMb: m.maxRssKb / 1024 });
      else finish({ outcome: m.outcome, message: m.message, rssMb: m.maxRssKb / 1024 });
    };
    const onExit = (code: number | null, sig: string | null) => {
      const oom = /heap out of memory|Allocation failed|ERR_BUFFER_TOO_LARGE|Cannot create a Buffer larger/.test(w.stderr);
      finish({ outcome: oom ? 'memory' : 'crash', message: `worker exited (${sig ?? `code ${code}`}): ${w.stderr.slice(-600)}`, rssMb: 0 });
    };
    const timer = setTimeout(() => {
      w.child.kill('SIGKILL');
      finish({ outcome: 'hang', message: `no answer within ${timeoutMs} ms`, rssMb: 0 });
    }, timeoutMs);
    w.child.on('message', onMsg);
    w.child.once('exit', onExit);
    w.stderr = '';
    w.child.send({ id, format, file, work, canary });
  });
}

async function fuzzFormat(format: Format, deadline: number): Promise<Record<Outcome, number> & { inputs: number }> {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number> & { inputs: number };
  counts.inputs = 0;
  let next = 0;
  const lane = async (k: number) => {
    const dir = path.join(root, `${format}-${k}`);
    mkdirSync(dir, { recursive: true });
    let w = await startWorker();
    while (next < perFormat && Date.now() < deadline) {
      const i = next++;
      const input = makeInput(format, i);
      const file = path.join(dir, `input-${i}.${EXT[format]}`);
      writeFileSync(file, input.bytes);
      const work = path.join(dir, 'work');
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work);
      const d = await runOne(w, i, format, file, work);
      counts[d.outcome]++;
      counts.inputs++;
      if (d.outcome !== 'clean' && d.outcome !== 'loaded') {
        const out = path.join(saveDir, format);
        mkdirSync(out, { recursive: true });
        writeFileSync(path.join(out, `${i}-${d.outcome}.${EXT[format]}`), input.bytes);
        writeFileSync(path.join(out, `${i}-${d.outcome}.txt`), `${format}:${i} seed ${seed} from ${input.seedName}: ${input.how}\n${d.message ?? ''}\n`);
        console.log(`  ${format}:${i} ${d.outcome} — ${input.how} — ${(d.message ?? '').split('\n')[0].slice(0, 200)}`);
        if (existsSync(canary)) rmSync(canary);
        w.child.kill('SIGKILL');
        w = await startWorker();
      }
      rmSync(file, { force: true });
      if (counts.inputs % 500 === 0) console.log(`  ${format}: ${counts.inputs} inputs, ${JSON.stringify(counts)}`);
    }
    w.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  await Promise.all(Array.from({ length: jobs }, (_, k) => lane(k)));
  return counts;
}

async function main(): Promise<void> {
  if (opt.replay) {
    const [f, i] = opt.replay.split(':');
    const input = makeInput(f as Format, Number(i));
    const file = path.join(process.cwd(), `replay-${f}-${i}.${EXT[f as Format]}`);
    writeFileSync(file, input.bytes);
    console.log(`${file}: ${input.how} (from ${input.seedName})`);
    return;
  }
  const deadline = Date.now() + timeLimit;
  const t0 = Date.now();
  const rows: string[] = [`| format | inputs | ${OUTCOMES.join(' | ')} |`, `| --- | --- |${OUTCOMES.map(() => ' --- |').join('')}`];
  let failed = 0;
  for (const f of formats) {
    const c = await fuzzFormat(f, deadline);
    rows.push(`| ${f} | ${c.inputs} | ${OUTCOMES.map((o) => c[o]).join(' | ')} |`);
    failed += c.inputs - c.clean - c.loaded;
    console.log(`${f} done: ${JSON.stringify(c)} (${Math.round((Date.now() - t0) / 1000)} s so far)`);
  }
  console.log(`\nseed ${seed}, ${Math.round((Date.now() - t0) / 1000)} s, failures saved under ${saveDir}\n${rows.join('\n')}`);
  if (!saveDir.startsWith(root) || !existsSync(saveDir)) rmSync(root, { recursive: true, force: true });
  process.exitCode = failed ? 1 : 0;
}

await main();
