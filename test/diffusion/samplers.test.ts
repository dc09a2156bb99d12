// Samplers on an analytic toy model: data x₀ ~ N(μ, s²) per element, so the exact ε-prediction is
// E[ε | x_t] = sqrt(1−ᾱ)(x_t − sqrt(ᾱ)μ) / (ᾱs² + 1 − ᾱ), and the probability-flow ODE from x_T = z ends
// at ᾱ[0] in x = sqrt(ᾱ₀)μ + sqrt(ᾱ₀s² + 1 − ᾱ₀)·z.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { registerSchedule } from '../../src/diffusion/schedules.js';
import { ddimSample, ddimNoiseTo, makeDDIMSchedule } from '../../src/diffusion/samplers/ddim.js';
import { plmsSample } from '../../src/diffusion/samplers/plms.js';
import { ddpmSample } from '../../src/diffusion/samplers/ddpm.js';
import { dpmSolverPPSample } from '../../src/diffusion/samplers/dpm-solver-pp.js';
import { guidedEps } from '../../src/diffusion/guidance.js';
import { seededNoise, replayNoise } from '../../src/diffusion/noise.js';
import type { EpsFn } from '../../src/diffusion/samplers/types.js';

const sched = registerSchedule({ linear_start: 0.0015, linear_end: 0.0195 });
const ac = sched.alphas_cumprod;
const MU = 0.7, S = 0.3;

/** ᾱ at a (possibly fractional) model timestep, log sqrt(ᾱ) interpolated linearly like DPM-Solver. */
function abar(t: number): number {
  const k = Math.min(Math.max(Math.floor(t), 0), ac.length - 2);
  const la = (i: number) => 0.5 * Math.log(ac[i]);
  return Math.exp(2 * (la(k) + (t - k) * (la(k + 1) - la(k))));
}

function toyEps(calls?: number[]): EpsFn {
  return (x, t) => {
    calls?.push(t);
    const a = abar(t);
    return T.mul(T.sub(x, Math.sqrt(a) * MU), Math.sqrt(1 - a) / (a * S * S + 1 - a));
  };
}

const D = (a: number) => Math.sqrt(a * S * S + 1 - a);
/** The exact flow from x = z at ᾱ = aStart to ᾱ[0]: x − sqrt(ᾱ)μ scales with D(ᾱ). */
function exactEnd(z: number, aStart: number): number {
  const a0 = ac[0];
  return Math.sqrt(a0) * MU + (D(a0) * (z - Math.sqrt(aStart) * MU)) / D(aStart);
}

function maxErr(x: T.Tensor, z: T.Tensor, aStart: number): number {
  const xs = x.toArray(), zs = z.toArray();
  return Math.max(...xs.map((v, i) => Math.abs(v - exactEnd(zs[i], aStart))));
}

const xT = T.keep(T.randn([2, 3, 4, 4], new T.Generator(7)));

test('DDIM (eta 0) matches a float64 scalar recursion of the reference update and converges to the ODE solution', () => {
  const calls: number[] = [];
  const r = ddimSample(toyEps(calls), ac, { xT, steps: 10 });
  assert.deepEqual(calls, [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  assert.equal(r.nfe, 10);
  // Independent scalar recursion (x is affine in z: x = A + B z).
  const s = r.schedule;
  let A = 0, B = 1;
  for (let i = 9; i >= 0; i--) {
    const a = s.alphas[i], ap = s.alphas_prev[i];
    const k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const eA = k * (A - Math.sqrt(a) * MU), eB = k * B;
    const pA = (A - Math.sqrt(1 - a) * eA) / Math.sqrt(a), pB = (B - Math.sqrt(1 - a) * eB) / Math.sqrt(a);
    A = Math.sqrt(ap) * pA + Math.sqrt(1 - ap) * eA;
    B = Math.sqrt(ap) * pB + Math.sqrt(1 - ap) * eB;
  }
  const xs = r.x.toArray(), zs = xT.toArray();
  const err = Math.max(...xs.map((v, i) => Math.abs(v - (A + B * zs[i]))));
  assert.ok(err < 2e-5, `DDIM vs scalar recursion: ${err}`);
  const e100 = maxErr(ddimSample(toyEps(), ac, { xT, steps: 100 }).x, xT, ac[991]);
  const e10 = maxErr(r.x, xT, ac[901]);
  assert.ok(e100 < e10 / 4, `DDIM error 10 steps ${e10}, 100 steps ${e100}`);
});

test('PLMS: two model calls on the first step, S+1 evaluations, higher order than DDIM', () => {
  const calls: number[] = [];
  const r = plmsSample(toyEps(calls), ac, { xT, steps: 10 });
  assert.deepEqual(calls.slice(0, 4), [901, 801, 801, 701]);
  assert.equal(calls.at(-1), 1);
  assert.equal(r.nfe, 11);
  const ePlms = maxErr(r.x, xT, ac[901]);
  const eDdim = maxErr(ddimSample(toyEps(), ac, { xT, steps: 10 }).x, xT, ac[901]);
  assert.ok(ePlms < eDdim / 2, `PLMS ${ePlms} vs DDIM ${eDdim}`);
  assert.throws(() => plmsSample(toyEps(), ac, { xT, steps: 10, eta: 0.5 }), /eta must be 0/);
});

test('DPM-Solver++(2M): fractional model times from 999 to 0, second order accuracy', () => {
  const calls: number[] = [];
  const r = dpmSolverPPSample(toyEps(calls), ac, { xT, steps: 10 });
  assert.equal(r.nfe, 10);
  assert.ok(Math.abs(calls[0] - 999) < 1e-9 && calls.every((t) => t > 0 && t <= 999));
  // Accuracy at 15 steps (from 15 steps on, the reference keeps second order up to the last step;
  // below, its lower_order_final makes the last, longest step in logSNR first order).
  const e = maxErr(dpmSolverPPSample(toyEps(), ac, { xT, steps: 15 }).x, xT, ac[999]);
  const d = ddimSample(toyEps(), ac, { xT, steps: 15 });
  const eDdim = maxErr(d.x, xT, ac[d.schedule.timesteps.at(-1)!]);
  assert.ok(e < eDdim / 2, `DPM++ ${e} vs DDIM ${eDdim}`);
});

function stats(x: T.Tensor): [number, number] {
  const v = x.toArray();
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return [m, Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length)];
}

test('DDPM ancestral and DDIM eta=1 sample the right distribution', () => {
  const big = T.randn([1, 1, 96, 96], new T.Generator(3));
  // Both are affine in x plus Gaussian noise per step: x' = αx + β + σn, so mean and variance follow a
  // scalar recursion that the sampled statistics must match.
  const [m, sd] = stats(ddpmSample(toyEps(), sched, { xT: big, noise: seededNoise(11) }).x);
  let mean0 = 0, var0 = 1;
  for (let t = 999; t >= 0; t--) {
    const a = ac[t];
    const k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const f = (x: number) => {
      const x0 = sched.sqrt_recip_alphas_cumprod[t] * x - sched.sqrt_recipm1_alphas_cumprod[t] * k * (x - Math.sqrt(a) * MU);
      return sched.posterior_mean_coef1[t] * x0 + sched.posterior_mean_coef2[t] * x;
    };
    const beta = f(0), alpha = f(1) - beta;
    mean0 = alpha * mean0 + beta;
    var0 = alpha * alpha * var0 + (t > 0 ? Math.exp(sched.posterior_log_variance_clipped[t]) : 0);
  }
  assert.ok(Math.abs(m - mean0) < 0.01 && Math.abs(sd - Math.sqrt(var0)) < 0.008, `ddpm: mean ${m} vs ${mean0}, std ${sd} vs ${Math.sqrt(var0)}`);
    const r = ddimSample(toyEps(), ac, { xT: big, steps: 50, eta: 1, noise: seededNoise(12) });
  const s = r.schedule;
  let mean = 0, vr = 1;
  for (let i = s.timesteps.length - 1; i >= 0; i--) {
    const a = s.alphas[i], ap = s.alphas_prev[i], sg = s.sigmas[i];
    const k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const f = (x: number) => {
      const e = k * (x - Math.sqrt(a) * MU);
      return Math.sqrt(ap) * ((x - Math.sqrt(1 - a) * e) / Math.sqrt(a)) + Math.sqrt(1 - ap - sg * sg) * e;
    };
    const beta = f(0), alpha = f(1) - beta;
    mean = alpha * mean + beta;
    vr = alpha * alpha * vr + sg * sg;
  }
  const [m2, sd2] = stats(r.x);
  assert.ok(Math.abs(m2 - mean) < 0.01 && Math.abs(sd2 - Math.sqrt(vr)) < 0.01, `ddim eta 1: mean ${m2} vs ${mean}, std ${sd2} vs ${Math.sqrt(vr)}`);
  assert.throws(() => ddimSample(toyEps(), ac, { xT, steps: 10, eta: 1 }), /needs a noise source/);
});

test('classifier-free guidance: batch order [uncond, cond] and ε_u + s(ε_c − ε_u)', () => {
  const seen: number[][] = [];
  // A "model" whose ε is the conditioning value broadcast over x.
  const model = (x: T.Tensor, _t: number, c: unknown) => {
    const cv = (c as T.Tensor).toArray();
    seen.push(cv);
    return T.add(T.mul(x, 0), T.reshape(c as T.Tensor, [x.shape[0], 1, 1, 1]));
  };
  const cond = T.tensor([2, 3]), uncond = T.tensor([10, 20]);
  const eps = guidedEps(model, cond, uncond, 4);
  const x = T.zeros([2, 1, 2, 2]);
  const e = eps(x, 5).toArray();
  assert.deepEqual(seen[0], [10, 20, 2, 3]);
  assert.deepEqual(e, [10 + 4 * (2 - 10), 10 + 4 * (2 - 10), 10 + 4 * (2 - 10), 10 + 4 * (2 - 10), 20 + 4 * (3 - 20), 20 + 4 * (3 - 20), 20 + 4 * (3 - 20), 20 + 4 * (3 - 20)]);
  const plain = guidedEps(model, cond, uncond, 1)(x, 5);
  assert.deepEqual(seen[1], [2, 3]);
  assert.deepEqual(plain.toArray().filter((_, i) => i % 4 === 0), [2, 3]);
  // dict (hybrid) conditionings are concatenated entry by entry
  const dict = guidedEps((xx, _t, c) => {
    const d = c as { c_concat: T.Tensor[]; c_crossattn: T.Tensor[] };
    assert.deepEqual(d.c_concat[0].shape, [4, 1]);
    assert.deepEqual(d.c_crossattn[0].toArray(), [10, 20, 2, 3]);
    return T.mul(xx, 0);
  }, { c_concat: [T.ones([2, 1])], c_crossattn: [cond] }, { c_concat: [T.zeros([2, 1])], c_crossattn: [uncond] }, 2);
  dict(x, 1);
});

test('step callbacks see (step, latent, x₀) and can cancel; x_T is left untouched', () => {
  const before = xT.toArray();
  const steps: number[] = [];
  const r = ddimSample(toyEps(), ac, {
    xT, steps: 20, onStep: ({ step, total, x, predX0 }) => {
      assert.equal(total, 20);
      assert.deepEqual(x.shape, [2, 3, 4, 4]);
      assert.deepEqual(predX0.shape, [2, 3, 4, 4]);
      steps.push(step);
      return step < 4;
    },
  });
  assert.deepEqual(steps, [0, 1, 2, 3, 4]);
  assert.equal(r.cancelled, true);
  assert.equal(r.steps, 5);
  assert.deepEqual(xT.toArray(), before);
  // at the last step x = sqrt(ᾱ₀)·x̂₀ + sqrt(1 − ᾱ₀)·ε, so x and the predicted x₀ nearly agree
  let last: number[] = [];
  const full = ddimSample(toyEps(), ac, { xT, steps: 20, onStep: ({ predX0 }) => void (last = predX0.toArray()) });
  const fx = full.x.toArray();
  assert.ok(last.every((v, i) => Math.abs(v - fx[i]) < 0.1 && Math.abs(v - fx[i]) > 0));
});

test('sampling loops do not grow memory', () => {
  const live = (steps: number, sampler: 'ddim' | 'plms' | 'dpm') => T.tidy(() => {
    const eps = toyEps();
    if (sampler === 'ddim') ddimSample(eps, ac, { xT, steps, eta: 1, noise: seededNoise(1) });
    else if (sampler === 'plms') plmsSample(eps, ac, { xT, steps });
    else dpmSolverPPSample(eps, ac, { xT, steps });
    return T.trackedCount();
  });
  for (const s of ['ddim', 'plms', 'dpm'] as const) assert.equal(live(10, s), live(50, s), `${s}: live tensors grow with steps`);
});

test('img2img helpers: noising to a DDIM index and starting there', () => {
  const s = makeDDIMSchedule(ac, 10);
  const x0 = T.full([1, 1, 2, 2], MU);
  const z = T.randn([1, 1, 2, 2], new T.Generator(5));
  const xt = ddimNoiseTo(s, 4, x0, z);
  const calls: number[] = [];
  const r = ddimSample(toyEps(calls), ac, { xT: xt, steps: 10, startIndex: 4 });
  assert.deepEqual(calls, [401, 301, 201, 101, 1]);
  assert.equal(r.steps, 5);
  const r2 = ddimSample(toyEps(), ac, { xT: T.randn([1, 1, 2, 2], new T.Generator(9)), steps: 10, noise: replayNoise([]) });
  assert.equal(r2.steps, 10);
});

/**
 * float64 re-implementation of CompVis/stable-diffusion DPM_Solver.sample(method='multistep', order=2,
 * skip_type='time_uniform', predict_x0=True, lower_order_final=True) on the toy model, per element
 * x = A + B·z (the toy ε is affine in x).
 */
function refDpmSolverPP2M(steps: number): { A: number; B: number; times: number[] } {
  const N = ac.length;
  const la = Array.from(ac, (a) => 0.5 * Math.log(a));
  const logMean = (t: number) => {
    // interpolate_fn over knots t_n = (n+1)/N, linear extrapolation at both ends
    let k = Math.floor(t * N) - 1;
    k = Math.min(Math.max(k, 0), N - 2);
    const t0 = (k + 1) / N, t1 = (k + 2) / N;
    return la[k] + ((t - t0) / (t1 - t0)) * (la[k + 1] - la[k]);
  };
  const alpha = (t: number) => Math.exp(logMean(t));
  const sigma = (t: number) => Math.sqrt(1 - Math.exp(2 * logMean(t)));
  const lambda = (t: number) => logMean(t) - 0.5 * Math.log(1 - Math.exp(2 * logMean(t)));
  const ts = Array.from({ length: steps + 1 }, (_, i) => 1 + ((1 / N - 1) * i) / steps);
  const times: number[] = [];
  // data prediction of the toy model: x0 = (x − σ ε)/α, ε = k(x − sqrt(ᾱ)μ) with ᾱ at the model time
  const model = (A: number, B: number, t: number): [number, number] => {
    const tin = (t - 1 / N) * 1000;
    times.push(tin);
    const a = abar(tin), k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const eA = k * (A - Math.sqrt(a) * MU), eB = k * B;
    return [(A - sigma(t) * eA) / alpha(t), (B - sigma(t) * eB) / alpha(t)];
  };
  const first = (A: number, B: number, s: number, t: number, m: [number, number]): [number, number] => {
    const h = lambda(t) - lambda(s), phi = Math.expm1(-h);
    return [(sigma(t) / sigma(s)) * A - alpha(t) * phi * m[0], (sigma(t) / sigma(s)) * B - alpha(t) * phi * m[1]];
  };
  const second = (A: number, B: number, tp1: number, tp0: number, t: number, m1: [number, number], m0: [number, number]): [number, number] => {
    const h0 = lambda(tp0) - lambda(tp1), h = lambda(t) - lambda(tp0), r0 = h0 / h;
    const c = alpha(t) * (Math.exp(-h) - 1);
    const D = [(m0[0] - m1[0]) / r0, (m0[1] - m1[1]) / r0];
    return [(sigma(t) / sigma(tp0)) * A - c * m0[0] - 0.5 * c * D[0], (sigma(t) / sigma(tp0)) * B - c * m0[1] - 0.5 * c * D[1]];
  };
  let A = 0, B = 1;
  const mList: [number, number][] = [model(A, B, ts[0])];
  const tList = [ts[0]];
  [A, B] = first(A, B, tList[0], ts[1], mList[0]);
  mList.push(model(A, B, ts[1]));
  tList.push(ts[1]);
  for (let step = 2; step <= steps; step++) {
    const order = steps < 15 ? Math.min(2, steps + 1 - step) : 2;
    [A, B] = order === 1 ? first(A, B, tList[1], ts[step], mList[1]) : second(A, B, tList[0], tList[1], ts[step], mList[0], mList[1]);
    tList[0] = tList[1];
    mList[0] = mList[1];
    tList[1] = ts[step];
    if (step < steps) mList[1] = model(A, B, ts[step]);
  }
  return { A, B, times };
}

test('DPM-Solver++(2M) equals a float64 re-implementation of the SD sampler (lower_order_final below 15 steps)', () => {
  for (const steps of [5, 10, 14, 15, 20]) {
    const calls: number[] = [];
    const r = dpmSolverPPSample(toyEps(calls), ac, { xT, steps });
    const ref = refDpmSolverPP2M(steps);
    assert.equal(r.nfe, steps);
    assert.equal(calls.length, ref.times.length);
    assert.ok(calls.every((t, i) => Math.abs(t - ref.times[i]) < 1e-9), `${steps} steps: model times ${calls} vs ${ref.times}`);
    const xs = r.x.toArray(), zs = xT.toArray();
    const err = Math.max(...xs.map((v, i) => Math.abs(v - (ref.A + ref.B * zs[i]))));
    assert.ok(err < 2e-5, `${steps} steps: DPM-Solver++ vs the float64 reference loop: ${err}`);
  }
});

test('DDPM ancestral: each step equals the float64 p_sample formula with the given noise; mask blending after the step at t', () => {
  const startT = 6;
  const x0 = T.randn([1, 1, 2, 3], new T.Generator(31));
  const zs = Array.from({ length: startT }, (_, i) => T.randn([1, 1, 2, 3], new T.Generator(40 + i)));
  const calls: number[] = [];
  const r = ddpmSample(toyEps(calls), sched, { xT: x0, startT, noise: replayNoise(zs), temperature: 0.8 });
  assert.deepEqual(calls, [5, 4, 3, 2, 1, 0]);
  let x = x0.toArray();
  for (let t = startT - 1; t >= 0; t--) {
    const a = ac[t], k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const z = zs[startT - 1 - t].toArray();
    x = x.map((v, i) => {
      const e = k * (v - Math.sqrt(a) * MU);
      const xr = Math.sqrt(1 / a) * v - Math.sqrt(1 / a - 1) * e;
      const mean = sched.posterior_mean_coef1[t] * xr + sched.posterior_mean_coef2[t] * v;
      return mean + (t > 0 ? Math.exp(0.5 * sched.posterior_log_variance_clipped[t]) * z[i] * 0.8 : 0);
    });
  }
  const got = r.x.toArray();
  assert.ok(got.every((v, i) => Math.abs(v - x[i]) < 1e-5 * (1 + Math.abs(x[i]))), `DDPM ${got} vs ${x}`);
  const seenT: number[] = [];
  ddpmSample(toyEps(), sched, { xT: x0, startT: 3, noise: seededNoise(1), blend: (xx, t) => (seenT.push(t), xx) });
  assert.deepEqual(seenT, [2, 1, 0]);
});

test('DDIM eta > 0: each step equals the float64 p_sample_ddim update with the given noise and temperature', () => {
  const steps = 5, eta = 0.7, temp = 0.9;
  const x0 = T.randn([1, 1, 2, 2], new T.Generator(51));
  const zs = Array.from({ length: steps }, (_, i) => T.randn([1, 1, 2, 2], new T.Generator(60 + i)));
  const r = ddimSample(toyEps(), ac, { xT: x0, steps, eta, temperature: temp, noise: replayNoise(zs) });
  // independent schedule: timesteps 1 + 200k, a_prev = ᾱ[0] for the last step
  const ts = [1, 201, 401, 601, 801];
  let x = x0.toArray();
  for (let idx = steps - 1; idx >= 0; idx--) {
    const a = ac[ts[idx]], ap = idx === 0 ? ac[0] : ac[ts[idx - 1]];
    const sg = eta * Math.sqrt(((1 - ap) / (1 - a)) * (1 - a / ap));
    const k = Math.sqrt(1 - a) / (a * S * S + 1 - a);
    const z = zs[steps - 1 - idx].toArray();
    x = x.map((v, i) => {
      const e = k * (v - Math.sqrt(a) * MU);
      const p0 = (v - Math.sqrt(1 - a) * e) / Math.sqrt(a);
      return Math.sqrt(ap) * p0 + Math.sqrt(1 - ap - sg * sg) * e + sg * z[i] * temp;
    });
  }
  const got = r.x.toArray();
  assert.ok(got.every((v, i) => Math.abs(v - x[i]) < 1e-5 * (1 + Math.abs(x[i]))), `DDIM eta ${eta}: ${got} vs ${x}`);
});
