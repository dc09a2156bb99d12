// Crash-safe training: an `ldm train` child process (tiny config, a checkpoint every 2 steps, keep-last 2) is
// killed with SIGKILL at seeded random moments — while a checkpoint is being written (the kill follows the
// appearance of the write's temporary folder, seen through inotify), in the middle of training steps, during
// start-up — and once stopped with Ctrl-C (SIGINT), then resumed each time with `--resume`. After every
// interruption every checkpoint folder present is complete and readable and `last` names one of them; at the end
// the weights, the optimizer state and every logged value are bit-identical to an uninterrupted run.
//
// LDM_KILL_TEST_KILLS=20 (default 3) sets the number of SIGKILLs (a SIGINT after the 2nd and every 5th);
// LDM_KILL_TEST_SEED the seed of the moments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readMetrics } from '../../src/train/logger.js';
import { assertSameTensors, ldmConfig, tensorBytes, tmpRoot, writeConfig } from './trainer-helpers.js';
import { CheckpointWatcher, checkAllComplete, ldmChild, runFolder, seededRandom, type Child } from './crash-helpers.js';

const KILLS = Number(process.env.LDM_KILL_TEST_KILLS ?? 3);
const SEED = Number(process.env.LDM_KILL_TEST_SEED ?? 2026);
const EVERY = 2;

type Mode = 'write' | 'step' | 'early' | 'sigint';

function plan(kills: number): Mode[] {
  const cycle: Mode[] = ['write', 'step', 'write', 'early'];
  const out: Mode[] = [];
  for (let k = 1; k <= kills; k++) {
    out.push(cycle[(k - 1) % cycle.length]);
    if (k === 2 || k % 5 === 0) out.push('sigint');
  }
  return out;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

test(`ldm train: ${KILLS} SIGKILLs (during checkpoint writes, steps, start-up) and a Ctrl-C, each resumed, end bit-identical to an uninterrupted run`, { timeout: 60 * 60_000 }, async () => {
  assert.ok(Number.isInteger(KILLS) && KILLS >= 1, `LDM_KILL_TEST_KILLS: expected a positive integer, got ${process.env.LDM_KILL_TEST_KILLS}`);
  const root = tmpRoot();
  const modes = plan(KILLS);
  // Each life advances at most 2 checkpoints: this budget always outlasts the interruptions.
  const maxSteps = 2 * EVERY * modes.length + 2 * EVERY;
  const doc = ldmConfig({ steps: maxSteps, train: 8, batch: 4 });
  doc.training = { ...doc.training, ckpt_every: EVERY, keep_last: 2 };
  const cfg = writeConfig(root, 'crash', doc);
  const t0 = Date.now();

  // ---- the uninterrupted run (also measures start-up, step and checkpoint-write times) ----------------------
  const refLogs = path.join(root, 'ref');
  const ref = ldmChild(['train', '--config', cfg, '--logdir', refLogs, '--name', 'crash', '--quiet']);
  const refDir = await runFolder(refLogs, ref);
  const rw = new CheckpointWatcher(path.join(refDir, 'checkpoints'));
  const rexit = await ref.exited;
  rw.close();
  assert.equal(rexit.code, 0, ref.stderr());
  const begins = rw.events.filter((e) => e.kind === 'begin');
  const writes = begins.map((b) => rw.events.find((e) => e.kind === 'done' && e.step === b.step)!.at - b.at);
  const writeMs = median(writes);
  const stepMs = (begins[begins.length - 1].at - begins[0].at) / (begins[begins.length - 1].step - begins[0].step);
  const startupMs = begins[0].at - ref.started - EVERY * stepMs;
  const refSeconds = (Date.now() - t0) / 1000;

  // ---- the interrupted run -------------------------------------------------------------------------------------
  const rand = seededRandom(SEED);
  const logdir = path.join(root, 'killed');
  let runDir: string | null = null;
  const lives: { mode: Mode; delay: number; from: number; steps: number[]; last: number | null; midWrite: boolean; midDelete: boolean }[] = [];
  for (const mode of modes) {
    const u = rand();
    const from = runDir ? checkAllComplete(path.join(runDir, 'checkpoints')).last! : 0;
    const child: Child = runDir
      ? ldmChild(['train', '--resume', runDir, '--quiet'])
      : ldmChild(['train', '--config', cfg, '--logdir', logdir, '--name', 'crash', '--quiet']);
    runDir ??= await runFolder(logdir, child);
    const ckDir = path.join(runDir, 'checkpoints');
    const w = new CheckpointWatcher(ckDir);
    const signal = mode === 'sigint' ? 'SIGINT' : 'SIGKILL';
    const hit = () => void child.proc.kill(signal);
    let delay = 0;
    if (mode === 'early') {
      delay = u * startupMs;
      setTimeout(hit, delay);
    } else {
      // 'write': inside the second checkpoint write of this life (the first one completes: progress each life);
      // 'step' / 'sigint': somewhere in the steps after this life's first complete checkpoint.
      let beginsSeen = 0;
      w.on = (e) => {
        if (mode === 'write' && e.kind === 'begin' && ++beginsSeen === 2) delay = u * 0.5 * writeMs;
        else if (mode !== 'write' && e.kind === 'done' && e.step > from && delay === 0) delay = 1 + u * 1.5 * EVERY * stepMs;
        else return;
        w.on = null;
        setTimeout(hit, delay);
      };
    }
    const ex = await child.exited;
    w.close();
    if (mode === 'sigint') {
      assert.equal(ex.code, 130, `Ctrl-C: exit code 130 expected\n${child.stderr()}`);
      const m = /interrupted at step (\d+)/.exec(child.stderr());
      assert.ok(m, child.stderr());
      const st = checkAllComplete(ckDir);
      assert.equal(st.last, Number(m[1]), 'Ctrl-C writes a last checkpoint of the step it stopped at');
      assert.ok(st.steps.includes(Number(m[1])));
    } else {
      assert.equal(ex.signal, 'SIGKILL', `${mode}: the run ended by itself (${ex.code}) before the kill\n${child.stderr()}`);
    }
    // Every checkpoint folder present is complete and readable, `last` names one of them.
    const st = checkAllComplete(ckDir);
    assert.ok(st.last !== null && st.last >= from, `after a ${mode} interruption: last ${st.last}, resumed from ${from}`);
    const pid = child.proc.pid;
    lives.push({
      mode, delay, from, steps: st.steps, last: st.last,
      midWrite: st.leftovers.some((n) => n.startsWith('.tmp-step-') && n.endsWith(`-${pid}`)),
      midDelete: st.leftovers.some((n) => n.startsWith('.tmp-old-') && n.endsWith(`-${pid}`)),
    });
  }
  const fin = ldmChild(['train', '--resume', runDir!, '--quiet']);
  const fex = await fin.exited;
  assert.equal(fex.code, 0, fin.stderr());
  const st = checkAllComplete(path.join(runDir!, 'checkpoints'));
  assert.equal(st.last, maxSteps);

  // ---- bit-identical to the uninterrupted run ---------------------------------------------------------------
  const a = path.join(refDir, 'checkpoints', 'last'), b = path.join(runDir!, 'checkpoints', 'last');
  const n = assertSameTensors(tensorBytes(path.join(a, 'model.safetensors')), tensorBytes(path.join(b, 'model.safetensors')), 'final weights');
  assert.ok(n > 100);
  assertSameTensors(tensorBytes(path.join(a, 'state.safetensors')), tensorBytes(path.join(b, 'state.safetensors')), 'optimizer state');
  assert.deepEqual(readMetrics(path.join(runDir!, 'metrics.jsonl')), readMetrics(path.join(refDir, 'metrics.jsonl')));

  const kills = lives.filter((l) => l.mode !== 'sigint');
  const wk = kills.filter((l) => l.mode === 'write');
  const midWrite = wk.filter((l) => l.midWrite).length;
  // The writes were really hit: at least one kill left its write's temporary folder behind.
  if (wk.length) assert.ok(midWrite >= 1, `no write-time kill landed inside a write (write ≈ ${writeMs} ms): ${JSON.stringify(lives)}`);
  console.log(`kill test (seed ${SEED}): ${kills.length} SIGKILLs — ${wk.length} during checkpoint writes (${midWrite} inside the write, ${kills.filter((l) => l.midWrite && l.mode !== 'write').length} more by chance; ${lives.filter((l) => l.midDelete).length} inside a deletion), ${kills.filter((l) => l.mode === 'step').length} in steps, ${kills.filter((l) => l.mode === 'early').length} in start-up — and ${lives.length - kills.length} Ctrl-C; `
    + `${maxSteps} steps, resumed from steps ${[...lives.slice(1).map((l) => l.from), lives[lives.length - 1].last].join(', ')}; final weights (${n} tensors), optimizer state and ${maxSteps} logged steps bit-identical; `
    + `uninterrupted ${refSeconds.toFixed(1)} s (start-up ${(startupMs / 1000).toFixed(1)} s, ${stepMs.toFixed(0)} ms/step, checkpoint write ${writeMs} ms), interrupted ${((Date.now() - t0) / 1000 - refSeconds).toFixed(1)} s`);
});
