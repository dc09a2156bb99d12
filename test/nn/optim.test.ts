import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { Adam, AdamW, SGD, clipGradNorm, Parameter } from '../../src/nn/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';

const golden = path.resolve(import.meta.dirname, '../..', '../shared/golden');

function close(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${a} vs ${expected[i]}`));
}

function param(values: number[], dtype: T.DType = 'float32'): Parameter {
  return new Parameter(T.tensor(values, [values.length], dtype));
}

function setGrad(p: T.Tensor, g: number[]): void {
  p.grad?.dispose();
  p.grad = T.keep(T.tensor(g, [...p.shape], p.dtype));
}

test('SGD: plain, weight decay, momentum with dampening, nesterov (hand-computed)', () => {
  const p = param([1, -2], 'float64');
  const sgd = new SGD([p], { lr: 0.1, weight_decay: 0.5 });
  setGrad(p, [0.3, 0.4]);
  sgd.step();
  // d = g + 0.5 p = [0.8, -0.6]; p -= 0.1 d
  close(p.toArray(), [0.92, -1.94], 1e-15, 'sgd+wd');

  const q = param([1, 1], 'float64');
  const mom = new SGD([q], { lr: 0.1, momentum: 0.9, dampening: 0.5 });
  setGrad(q, [1, -1]);
  mom.step(); // buf = g (first step takes d as is) → q = [0.9, 1.1]
  setGrad(q, [2, 0]);
  mom.step(); // buf = 0.9 [1, -1] + 0.5 [2, 0] = [1.9, -0.9] → q -= 0.1 buf
  close(q.toArray(), [0.9 - 0.19, 1.1 + 0.09], 1e-15, 'sgd momentum');

  const r = param([0], 'float64');
  const nes = new SGD([r], { lr: 1, momentum: 0.5, nesterov: true });
  setGrad(r, [1]);
  nes.step(); // buf = 1, d = 1 + 0.5 = 1.5
  setGrad(r, [1]);
  nes.step(); // buf = 0.5 + 1 = 1.5, d = 1 + 0.75 = 1.75
  close(r.toArray(), [-3.25], 1e-15, 'nesterov');
  assert.throws(() => new SGD([param([0])], { lr: 1, nesterov: true }), /nesterov momentum requires momentum > 0/);
});

test('Adam and AdamW: one step against hand-computed values', () => {
  // Adam, L2 decay: g' = g + wd·p = 0.5 + 0.1·2 = 0.7; m = 0.1·0.7; v = 0.001·0.49;
  // m̂ = 0.7, √v̂ = 0.7 → p = 2 − lr·0.7/(0.7 + eps)
  const a = param([2], 'float64');
  const adam = new Adam([a], { lr: 0.01, weight_decay: 0.1, eps: 1e-3 });
  setGrad(a, [0.5]);
  adam.step();
  close(a.toArray(), [2 - 0.01 * 0.7 / (0.7 + 1e-3)], 1e-15, 'adam');
  const st = adam.state.get(a)!;
  assert.equal(st.step, 1);
  close([...st.buffers.exp_avg], [0.07], 1e-15, 'exp_avg');
  close([...st.buffers.exp_avg_sq], [0.001 * 0.49], 1e-15, 'exp_avg_sq');

  // AdamW: p = 2·(1 − 0.01·0.1) then the Adam step with g = 0.5: m̂ = 0.5, √v̂ = 0.5.
  const w = param([2], 'float64');
  const adamw = new AdamW([w], { lr: 0.01, weight_decay: 0.1, eps: 1e-3, betas: [0.8, 0.9] });
  setGrad(w, [0.5]);
  adamw.step();
  close(w.toArray(), [2 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-3)], 1e-15, 'adamw');

  // Second step by hand, with bias corrections 1 − βᵗ.
  setGrad(w, [-1]);
  adamw.step();
  const m = 0.8 * 0.2 * 0.5 + 0.2 * -1, v = 0.9 * 0.1 * 0.25 + 0.1 * 1;
  const p1 = 2 * (1 - 0.001) - 0.01 * 0.5 / (0.5 + 1e-3);
  const p2 = p1 * (1 - 0.001) - (0.01 / (1 - 0.8 ** 2)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.9 ** 2) + 1e-3);
  close(w.toArray(), [p2], 1e-14, 'adamw step 2');
});

// Independent float64 AdamW, written from the paper/PyTorch docs.
function referenceAdamW(p0: number[], gradOf: (p: number[]) => number[], steps: number, lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  const p = [...p0], m = p.map(() => 0), v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = gradOf(p);
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mh = m[i] / (1 - b1 ** t), vh = v[i] / (1 - b2 ** t);
      p[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
    }
  }
  return p;
}

test('AdamW: 25 steps on a quadratic (gradients by autograd) match a float64 reference', () => {
  // f(p) = ½ Σ a_i (p_i − c_i)², ∇f = a ⊙ (p − c)
  const a = [1, 4, 0.25, 2, 9, 0.5], c = [0.5, -1, 3, 0, 2, -2];
  const p0 = [0, 0.3, -1, 1, 1.5, 0.2];
  const lr = 0.05, betas: [number, number] = [0.9, 0.99], eps = 1e-8, wd = 0.02, steps = 25;
  for (const dtype of ['float64', 'float32'] as const) {
    const p = param(p0, dtype);
    const A = T.tensor(a, [6], dtype), C = T.tensor(c, [6], dtype);
    const opt = new AdamW([p], { lr, betas, eps, weight_decay: wd });
    for (let s = 0; s < steps; s++) {
      T.tidy(() => {
        const d = T.sub(p, C);
        T.mul(T.sum(T.mul(T.mul(d, d), A)), 0.5).backward();
      });
      opt.step();
      opt.zeroGrad();
    }
    const ref = referenceAdamW(p0, (q) => q.map((x, i) => a[i] * (x - c[i])), steps, lr, betas[0], betas[1], eps, wd);
    close(p.toArray(), ref, dtype === 'float64' ? 1e-12 : 2e-5, `AdamW ${dtype}`);
    // It actually moved towards the minimum.
    assert.ok(Math.abs(p.toArray()[4] - 2) < Math.abs(p0[4] - 2));
  }
});

test('AdamW: the one-step update of the golden training case (PyTorch) is reproduced', (t) => {
  const dir = path.join(golden, 'ldm_train_step');
  if (!existsSync(path.join(dir, 'io.safetensors'))) {
    t.skip(`golden fixtures not found at ${dir}`);
    return;
  }
  const cfg = { lr: 0.001, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weight_decay: 0.01 };
  const w = readSafetensors(path.join(dir, 'weights.safetensors')).tensors;
  const io = readSafetensors(path.join(dir, 'io.safetensors')).tensors;
  const names = [...io.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
  assert.ok(names.length >= 5, 'watched parameters present');
  const params = names.map((n) => new Parameter(w.get(n)!));
  params.forEach((p, i) => (p.grad = T.keep(io.get(`grad.${names[i]}`)!)));
  new AdamW(params, cfg).step();
  params.forEach((p, i) => {
    const got = p.toArray(), want = io.get(`after_step.${names[i]}`)!.toArray();
    let maxErr = 0;
    for (let k = 0; k < got.length; k++) maxErr = Math.max(maxErr, Math.abs(got[k] - want[k]));
    assert.ok(maxErr < 1e-6, `${names[i]}: max |Δ| ${maxErr}`);
  });
});

test('clipGradNorm: PyTorch formula, returns the total norm, scales only above maxNorm', () => {
  const p = param([0, 0]), q = param([0]);
  setGrad(p, [3, 0]);
  setGrad(q, [4]);
  const total = clipGradNorm([p, q], 1);
  assert.ok(Math.abs(total - 5) < 1e-6);
  const coef = 1 / (5 + 1e-6);
  close(p.grad!.toArray(), [3 * coef, 0], 1e-6, 'p.grad');
  close(q.grad!.toArray(), [4 * coef], 1e-6, 'q.grad');
  // Below the threshold: unchanged.
  assert.ok(Math.abs(clipGradNorm([p, q], 10) - 1) < 1e-5);
  close(q.grad!.toArray(), [4 * coef], 1e-6, 'unchanged');
  // Infinity norm.
  setGrad(p, [-7, 2]);
  assert.equal(clipGradNorm([p], 100, Infinity), 7);
  // Leaves sharing one gradient storage (z = x + y) are scaled once each.
  const x = param([1, 1]), y = param([1, 1]);
  T.sum(T.mul(T.add(x, y), 3)).backward();
  clipGradNorm([x, y], 1);
  close(x.grad!.toArray(), y.grad!.toArray(), 0, 'x vs y');
  const n = Math.hypot(...x.grad!.toArray(), ...y.grad!.toArray());
  assert.ok(Math.abs(n - 1) < 1e-5, `clipped norm ${n}`);
});

test('optimizer state dict: save, load into a fresh optimizer, continue identically', () => {
  const mk = () => [param([1, 2, 3]), param([-1, 0.5])];
  const grads = (s: number) => [[0.1 * s, -0.2, 0.3], [0.5, -0.05 * s]];
  const run = (ps: Parameter[], opt: AdamW, from: number, to: number) => {
    for (let s = from; s < to; s++) {
      ps.forEach((p, i) => setGrad(p, grads(s)[i]));
      opt.step();
    }
  };
  const a = mk();
  const oa = new AdamW(a, { lr: 0.01, amsgrad: true });
  run(a, oa, 0, 6);

  const b = mk();
  const ob = new AdamW(b, { lr: 0.01, amsgrad: true });
  run(b, ob, 0, 3);
  const sd = ob.stateDict();
  assert.deepEqual([...sd.tensors.keys()].sort(), [
    'state.0.exp_avg', 'state.0.exp_avg_sq', 'state.0.max_exp_avg_sq', 'state.0.step',
    'state.1.exp_avg', 'state.1.exp_avg_sq', 'state.1.max_exp_avg_sq', 'state.1.step',
  ]);
  assert.equal(sd.tensors.get('state.1.step')!.item(), 3);
  assert.equal(sd.groups[0].lr, 0.01);
  const c = b.map((p) => new Parameter(T.tensor(p.toArray(), [...p.shape])));
  const oc = new AdamW(c, { lr: 0.5 });
  oc.loadStateDict(sd);
  assert.equal(oc.lr, 0.01);
  run(c, oc, 3, 6);
  a.forEach((p, i) => close(c[i].toArray(), p.toArray(), 0, `param ${i}`));

  const bad = new AdamW([param([1, 2])], {});
  assert.throws(() => bad.loadStateDict(sd, 'ckpt.safetensors'), /AdamW\.loadStateDict\(ckpt\.safetensors\): state\.0\.exp_avg has shape \[3\], parameter 0 has \[2\]|refers to parameter 1/);
});

test('optimizers: parameter groups with their own options; params without grad are skipped; errors', () => {
  const p = param([1]), q = param([1]), r = param([1]);
  const opt = new SGD([{ params: [p] }, { params: [q, r], options: { lr: 1 } }], { lr: 0.1 });
  setGrad(p, [1]);
  setGrad(q, [1]);
  opt.step();
  close([p.item(), q.item(), r.item()], [0.9, 0, 1], 1e-7, 'groups');
  opt.lr = 0.5;
  assert.deepEqual(opt.groups.map((g) => g.options.lr), [0.5, 0.5]);
  opt.zeroGrad();
  assert.equal(p.grad, null);
  assert.throws(() => new Adam([p, p]), /appears more than once/);
  assert.throws(() => new Adam([]), /empty parameter list/);
  setGrad(p, [1]);
  p.grad = T.keep(T.tensor([1, 2]));
  assert.throws(() => new Adam([p]).step(), /Adam: gradient of parameter 0 has shape \[2\], parameter has \[1\]/);
});
