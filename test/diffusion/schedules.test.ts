import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { ddimSchedule, ddimStepCountWorks, ddimTimesteps, makeBetaSchedule, registerSchedule, type DDIMDiscretize } from '../../src/diffusion/schedules.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const golden = path.resolve(repoRoot, '../shared/golden/schedules');

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (Number(a[i]) - Number(b[i])) ** 2;
    den += Number(b[i]) ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

test('linear schedule matches the reference table (§2.4)', () => {
  const a = registerSchedule({ linear_start: 0.0015, linear_end: 0.0195 }).alphas_cumprod;
  assert.ok(Math.abs(a[0] - 0.9985) < 1e-7);
  assert.ok(Math.abs(a[999] - 1.42304e-4) / 1.42304e-4 < 1e-4, `ᾱ[999] = ${a[999]}`);
  const ts = ddimTimesteps('uniform', 50);
  assert.deepEqual([ts[0], ts[1], ts.at(-1)], [1, 21, 981]);
  const d = ddimSchedule(a, ts, 1);
  assert.ok(Math.abs(d.alphas[0] - 0.99699444) < 1e-7);
  assert.ok(Math.abs(d.alphas[49] - 2.0195602e-4) / 2.0195602e-4 < 1e-5);
  assert.ok(Math.abs(d.alphas_prev[0] - 0.99849999) < 1e-7);
  assert.ok(Math.abs(d.alphas_prev[49] - 2.9478563e-4) / 2.9478563e-4 < 1e-5);
  assert.ok(Math.abs(d.sigmas[49] - 0.56113832) < 1e-6, `first-step sigma ${d.sigmas[49]}`);
  assert.ok(Math.abs(d.sigmas[0] - 0.02743205) < 1e-6, `last-step sigma ${d.sigmas[0]}`);
  const b = registerSchedule({ linear_start: 0.00085, linear_end: 0.012 }).alphas_cumprod;
  assert.ok(Math.abs(b[999] - 4.6601e-3) / 4.6601e-3 < 1e-4);
});

test('DDIM step counts: uneven counts follow the reference, crashing counts are rejected with alternatives', () => {
  assert.equal(ddimTimesteps('uniform', 400).length, 500);
  assert.equal(ddimTimesteps('uniform', 150).length, 167);
  assert.equal(ddimTimesteps('uniform', 200).at(-1), 996);
  assert.equal(ddimTimesteps('uniform', 250).at(-1), 997);
  const failing = [];
  for (let s = 1; s <= 1000; s++) if (!ddimStepCountWorks(s)) failing.push(s);
  const expected = [3, 9, 27, 36, 37];
  for (let s = 101; s <= 111; s++) expected.push(s);
  for (let s = 251; s <= 333; s++) expected.push(s);
  for (let s = 501; s <= 1000; s++) expected.push(s);
  assert.deepEqual(failing, expected);
  assert.throws(() => ddimTimesteps('uniform', 27), /27 steps would use timestep 1000.*near 27: 26 or 28/s);
  const q = ddimTimesteps('quad', 30);
  assert.equal(q[0], 1);
  assert.equal(q.at(-1), 801);
});

test('cosine / sqrt_linear / sqrt schedules are well formed', () => {
  const c = makeBetaSchedule('cosine', 1000);
  assert.ok(c.every((x) => x >= 0 && x <= 0.999));
  assert.equal(c[999], 0.999);
  const sl = makeBetaSchedule('sqrt_linear', 5, 0.1, 0.5);
  assert.deepEqual([...sl].map((x) => +x.toFixed(12)), [0.1, 0.2, 0.3, 0.4, 0.5]);
  const sq = makeBetaSchedule('sqrt', 2, 0.04, 0.09);
  assert.ok(Math.abs(sq[0] - 0.2) < 1e-15 && Math.abs(sq[1] - 0.3) < 1e-15);
});

test('golden schedules fixture: betas, ᾱ, DDIM parameters', (t) => {
  if (!existsSync(golden)) return t.skip(`golden fixtures not found at ${golden}`);
  const io = readSafetensors(path.join(golden, 'io.safetensors')).tensors;
  const cfgs: Record<string, { beta_schedule: 'linear' | 'cosine'; linear_start: number; linear_end: number }> = {
    linear_a: { beta_schedule: 'linear', linear_start: 0.0015, linear_end: 0.0195 },
    linear_b: { beta_schedule: 'linear', linear_start: 0.00085, linear_end: 0.012 },
    cosine: { beta_schedule: 'cosine', linear_start: 0.0015, linear_end: 0.0195 },
  };
  const bufs: Record<string, ReturnType<typeof registerSchedule>> = {};
  for (const [name, cfg] of Object.entries(cfgs)) {
    const s = (bufs[name] = registerSchedule(cfg));
    assert.ok(relL2(s.betas, io.get(`${name}.betas`)!.toArray()) < 1e-7, `${name}.betas`);
    assert.ok(relL2(s.alphas_cumprod, io.get(`${name}.alphas_cumprod`)!.toArray()) < 1e-7, `${name}.alphas_cumprod`);
  }
  const cases: [string, number, number, DDIMDiscretize][] = [
    ['linear_a', 50, 0.0, 'uniform'], ['linear_a', 20, 1.0, 'uniform'], ['linear_b', 25, 0.5, 'uniform'], ['linear_b', 30, 0.0, 'quad'],
  ];
  for (const [sched, S, eta, disc] of cases) {
    const prefix = `ddim.${sched}.${disc}.S${S}.eta${eta.toFixed(1)}`;
    const ts = ddimTimesteps(disc, S);
    assert.deepEqual(ts, io.get(`${prefix}.timesteps`)!.toArray(), `${prefix}.timesteps`);
    const d = ddimSchedule(bufs[sched].alphas_cumprod, ts, eta);
    assert.ok(relL2(d.alphas, io.get(`${prefix}.alphas`)!.toArray()) < 1e-7, `${prefix}.alphas`);
    assert.ok(relL2(d.alphas_prev, io.get(`${prefix}.alphas_prev`)!.toArray()) < 1e-7, `${prefix}.alphas_prev`);
    const sig = io.get(`${prefix}.sigmas`)!.toArray();
    if (eta === 0) assert.ok(d.sigmas.every((x) => x === 0) && sig.every((x) => x === 0));
    else assert.ok(relL2(d.sigmas, sig) < 1e-6, `${prefix}.sigmas ${relL2(d.sigmas, sig)}`);
  }
});
