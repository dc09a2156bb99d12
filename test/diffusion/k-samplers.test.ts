// The k-diffusion samplers (Euler, Euler ancestral, Heun, DPM++ 2M, DPM++ 2M Karras, DPM++ SDE) step by step
// against a float64 re-implementation of k_diffusion/sampling.py's update formulas and external.py's
// CompVisDenoiser (σ = sqrt((1−ᾱ)/ᾱ), model input x/sqrt(σ²+1), σ → t by interpolating log σ), on the
// analytic toy model of samplers.test.ts; stochastic ones with replayed noise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { registerSchedule } from '../../src/diffusion/schedules.js';
import { replayNoise } from '../../src/diffusion/noise.js';
import { KSchedule } from '../../src/diffusion/samplers/k-schedule.js';
import { SAMPLERS, SAMPLER_TABLE, samplerSpec } from '../../src/diffusion/samplers/index.js';
import type { EpsFn } from '../../src/diffusion/samplers/types.js';

const sched = registerSchedule({ linear_start: 0.00085, linear_end: 0.012 }); // SD v1's schedule
const ac = sched.alphas_cumprod;
const N = ac.length;
const MU = 0.7, S = 0.3;

// ---- the float64 reference ---------------------------------------------------------------------------

const refSig = Array.from(ac, (a) => Math.sqrt((1 - a) / a));
const refLog = refSig.map(Math.log);

/** sigma_to_t: low_idx = (number of log σ_i ≤ log σ) − 1, clamped to [0, N−2]; w clamped to [0, 1]. */
function refSigmaToT(s: number): number {
  const ls = Math.log(s);
  let low = refLog.filter((l) => ls - l >= 0).length - 1;
  low = Math.max(0, Math.min(low, N - 2));
  let w = (refLog[low] - ls) / (refLog[low] - refLog[low + 1]);
  w = Math.max(0, Math.min(1, w));
  return (1 - w) * low + w * (low + 1);
}
function refTToSigma(t: number): number {
  const lo = Math.floor(t), hi = Math.ceil(t), w = t - lo;
  return Math.exp((1 - w) * refLog[lo] + w * refLog[hi]);
}
function refSigmas(n: number, kind: 'default' | 'karras' | 'exponential'): number[] {
  const lin = (a: number, b: number) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
  const smin = refSig[0], smax = refSig[N - 1];
  let s: number[];
  if (kind === 'default') s = lin(N - 1, 0).map(refTToSigma);
  else if (kind === 'karras') s = lin(0, 1).map((r) => (smax ** (1 / 7) + r * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7);
  else s = lin(Math.log(smax), Math.log(smin)).map(Math.exp);
  return [...s, 0];
}
/** ᾱ at a fractional timestep (log sqrt ᾱ linear), and the exact ε of the toy data N(μ, S²). */
function abar(t: number): number {
  const k = Math.min(Math.max(Math.floor(t), 0), N - 2);
  const la = (i: number) => 0.5 * Math.log(ac[i]);
  return Math.exp(2 * (la(k) + (t - k) * (la(k + 1) - la(k))));
}
const refEps = (x: number, t: number) => {
  const a = abar(t);
  return (Math.sqrt(1 - a) * (x - Math.sqrt(a) * MU)) / (a * S * S + 1 - a);
};
const refD = (x: number, s: number) => x - s * refEps(x / Math.sqrt(s * s + 1), refSigmaToT(s));
function refAncestral(from: number, to: number, eta: number): [number, number] {
  if (!eta) return [to, 0];
  const up = Math.min(to, eta * Math.sqrt((to ** 2 * (from ** 2 - to ** 2)) / from ** 2));
  return [Math.sqrt(to ** 2 - up ** 2), up];
}

type RefStep = (x: Float64Array, i: number, s: number[], z: () => Float64Array) => Float64Array;
const map = (x: Float64Array, f: (v: number, j: number) => number) => Float64Array.from(x, f);

const REF: Record<string, { step: RefStep; eta?: number; prep?: () => void }> = {
  euler: {
    step: (x, i, s) => map(x, (v) => v + ((v - refD(v, s[i])) / s[i]) * (s[i + 1] - s[i])),
  },
  'euler-a': {
    step: (x, i, s, z) => {
      const [down, up] = refAncestral(s[i], s[i + 1], 1);
      const y = map(x, (v) => v + ((v - refD(v, s[i])) / s[i]) * (down - s[i]));
      if (s[i + 1] > 0) {
        const n = z();
        return map(y, (v, j) => v + n[j] * up);
      }
      return y;
    },
  },
  heun: {
    step: (x, i, s) =>
      map(x, (v) => {
        const d = (v - refD(v, s[i])) / s[i], dt = s[i + 1] - s[i];
        if (s[i + 1] === 0) return v + d * dt;
        const v2 = v + d * dt;
        const d2 = (v2 - refD(v2, s[i + 1])) / s[i + 1];
        return v + ((d + d2) / 2) * dt;
      }),
  },
};
// DPM++ 2M keeps the previous denoised value
let old: Float64Array | null = null;
const dpmpp2m: RefStep = (x, i, s) => {
  const den = map(x, (v) => refD(v, s[i]));
  const t = -Math.log(s[i]), tn = -Math.log(s[i + 1]), h = tn - t;
  let out: Float64Array;
  if (old === null || s[i + 1] === 0) out = map(x, (v, j) => (Math.exp(-tn) / Math.exp(-t)) * v - Math.expm1(-h) * den[j]);
  else {
    const r = (t - -Math.log(s[i - 1])) / h;
    const o = old;
    out = map(x, (v, j) => (Math.exp(-tn) / Math.exp(-t)) * v - Math.expm1(-h) * ((1 + 1 / (2 * r)) * den[j] - (1 / (2 * r)) * o[j]));
  }
  old = den;
  return out;
};
REF['dpm++2m'] = { step: dpmpp2m, prep: () => (old = null) };
REF['dpm++2m-karras'] = { step: dpmpp2m, prep: () => (old = null) };
REF['dpm++sde'] = {
  step: (x, i, s, z) => {
    const den = map(x, (v) => refD(v, s[i]));
    if (s[i + 1] === 0) return map(x, (v, j) => v + ((v - den[j]) / s[i]) * (s[i + 1] - s[i]));
    const sf = (t: number) => Math.exp(-t), tf = (g: number) => -Math.log(g);
    const t = tf(s[i]), tn = tf(s[i + 1]), h = tn - t, sm = t + h / 2, fac = 1;
    let [sd, su] = refAncestral(sf(t), sf(sm), 1);
    const s_ = tf(sd);
    const n1 = z();
    const x2 = map(x, (v, j) => (sf(s_) / sf(t)) * v - Math.expm1(t - s_) * den[j] + n1[j] * su);
    const den2 = map(x2, (v) => refD(v, sf(sm)));
    [sd, su] = refAncestral(sf(t), sf(tn), 1);
    const tn_ = tf(sd);
    const n2 = z();
    return map(x, (v, j) => (sf(tn_) / sf(t)) * v - Math.expm1(t - tn_) * ((1 - fac) * den[j] + fac * den2[j]) + n2[j] * su);
  },
};

// ---- the comparison -----------------------------------------------------------------------------------

const toyEps: EpsFn = (x, t) => {
  const a = abar(t);
  return T.mul(T.sub(x, Math.sqrt(a) * MU), Math.sqrt(1 - a) / (a * S * S + 1 - a));
};
const shape = [2, 2, 3, 3];
const xT = T.keep(T.randn(shape, new T.Generator(17)));

for (const name of ['euler', 'euler-a', 'heun', 'dpm++2m', 'dpm++2m-karras', 'dpm++sde']) {
  test(`${name}: every step equals the float64 k-diffusion update (10 steps, SD v1 schedule)`, () => {
    const steps = 10;
    const spec = samplerSpec(name);
    const noises = Array.from({ length: 2 * steps }, (_, i) => T.keep(T.randn(shape, new T.Generator(100 + i))));
    const seen: Float32Array[] = [];
    const sampler = spec.create({ buffers: sched, parameterization: 'eps' }, { steps });
    const r = sampler.sample(toyEps, xT, { noise: replayNoise(noises), onStep: ({ x }) => void seen.push(Float32Array.from(x.toArray())) });
    assert.equal(r.steps, steps);
    const kind = name === 'dpm++2m-karras' ? 'karras' : 'default';
    const s = refSigmas(steps, kind);
    REF[name].prep?.();
    let zi = 0;
    const z = () => Float64Array.from(noises[zi++].toArray());
    let x: Float64Array = map(Float64Array.from(xT.toArray()), (v) => v * s[0]);
    let worst = 0;
    for (let i = 0; i < steps; i++) {
      x = REF[name].step(x, i, s, z);
      const scale = Math.max(...x.map(Math.abs));
      const err = Math.max(...x.map((v, j) => Math.abs(v - seen[i][j]))) / scale;
      worst = Math.max(worst, err);
      assert.ok(err < 2e-5, `${name} step ${i}: relative error ${err}`);
    }
    // the model calls: Heun and DPM++ SDE take two per step except the last one
    assert.equal(r.nfe, name === 'heun' || name === 'dpm++sde' ? 2 * steps - 1 : steps);
    if (spec.stochastic) assert.ok(zi > 0 && zi <= noises.length);
    noises.forEach((n) => n.dispose());
  });
}

test('noise levels and σ → t: default, karras and exponential schedules as k-diffusion builds them', () => {
  const ks = new KSchedule(ac);
  for (const kind of ['default', 'karras', 'exponential'] as const) {
    const ours = ks.getSigmas(12, kind), ref = refSigmas(12, kind);
    assert.equal(ours.length, 13);
    ours.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-12 * Math.max(1, ref[i]), `${kind}[${i}] ${v} vs ${ref[i]}`));
  }
  assert.ok(Math.abs(ks.sigmaMax - Math.sqrt((1 - ac[N - 1]) / ac[N - 1])) < 1e-12);
  for (const t of [0, 0.25, 17.5, 500, 998.9, 999]) assert.ok(Math.abs(ks.sigmaToT(ks.tToSigma(t)) - t) < 1e-9, `t ${t}`);
  assert.equal(ks.sigmaToT(1e-9), 0); // clamped below σ_min
  assert.equal(ks.sigmaToT(1e9), N - 1);
  // timesteps a sampler reports: from 999 down, fractional in between
  const euler = samplerSpec('euler').create({ buffers: sched, parameterization: 'eps' }, { steps: 4 });
  assert.ok(Math.abs(euler.timesteps[0] - 999) < 1e-9 && Math.abs(euler.timesteps[3]) < 1e-9);
  assert.throws(() => samplerSpec('euler').create({ buffers: sched, parameterization: 'x0' }, { steps: 4 }), /need an ε-prediction model/);
});

test('the denoiser is CompVisDenoiser: the UNet sees x/sqrt(σ²+1) at t(σ), D = x − σ·ε', () => {
  const ks = new KSchedule(ac);
  const calls: [number, number][] = [];
  const x = T.tensor([2, -1], [1, 1, 1, 2]);
  const D = ks.denoiser((xin, t) => {
    calls.push([xin.toArray()[0], t]);
    return T.mulScalar(xin, 0.5);
  });
  const sigma = 3.7;
  const out = D(x, sigma).toArray();
  const c = 1 / Math.sqrt(sigma * sigma + 1);
  assert.ok(Math.abs(calls[0][0] - 2 * c) < 1e-6 && Math.abs(calls[0][1] - refSigmaToT(sigma)) < 1e-12);
  assert.ok(Math.abs(out[0] - (2 - sigma * 0.5 * 2 * c)) < 1e-5);
});

test('img2img: noiseTo puts x0 + σ_s·z at the first step run; floor(strength·steps) steps follow', () => {
  const sp = samplerSpec('dpm++2m-karras').create({ buffers: sched, parameterization: 'eps' }, { steps: 10 });
  const x0 = T.full(shape, 0.25), z = T.full(shape, 1);
  const { x, start } = sp.noiseTo(x0, 0.45, z);
  assert.equal(start, 6); // 4 steps left
  const s = refSigmas(10, 'karras');
  assert.ok(Math.abs(x.toArray()[0] - (0.25 + s[6])) < 1e-5);
  const r = sp.sample(toyEps, x, { start });
  assert.equal(r.steps, 4);
  assert.throws(() => sp.noiseTo(x0, 0, z), /strength must be in \(0, 1\]/);
});

test('the registry: one row per sampler, each with a description and the settings it reads', () => {
  assert.deepEqual(SAMPLERS, ['ddim', 'plms', 'dpm++', 'ddpm', 'euler', 'euler-a', 'heun', 'dpm++2m', 'dpm++2m-karras', 'dpm++sde']);
  for (const s of SAMPLER_TABLE) assert.ok(s.description.length > 20 && Array.isArray(s.options), s.name);
  assert.ok(samplerSpec('euler-a').options.includes('eta') && !samplerSpec('euler').options.includes('eta'));
  assert.ok(!samplerSpec('dpm++2m-karras').options.includes('schedule'));
  assert.throws(() => samplerSpec('lms'), /unknown sampler "lms" \(one of ddim, plms/);
  // the Euler ODE solver converges to the toy's exact flow; Heun (2nd order) is closer with the same steps
  const err = (name: string, steps: number) => {
    const r = samplerSpec(name).create({ buffers: sched, parameterization: 'eps' }, { steps }).sample(toyEps, xT);
    // flow of N(μ, S²) data from σ_max: x₀ = μ + S·(x_σ − μ)/sqrt(S² + σ²), x_σ = σ_max·z
    const smax = refSig[N - 1];
    const zs = xT.toArray(), xs = r.x.toArray();
    return Math.max(...xs.map((v, i) => Math.abs(v - (MU + (S * (smax * zs[i] - MU)) / Math.sqrt(S * S + smax * smax)))));
  };
  const e10 = err('euler', 10), e40 = err('euler', 40), h10 = err('heun', 10), d10 = err('dpm++2m', 10);
  assert.ok(e40 < e10 / 2, `Euler 10 steps ${e10}, 40 steps ${e40}`);
  assert.ok(h10 < e10 / 2 && d10 < e10 / 2, `Heun ${h10}, DPM++ 2M ${d10} vs Euler ${e10}`);
});
