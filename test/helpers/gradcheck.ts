// Finite-difference gradient check in float64: compares the autograd gradient of
// L = Σ out · W (W fixed random) with central differences for every element of every input.
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Indices of inputs that are not differentiated (e.g. integer indices, masks). */
  constant?: number[];
}

export function gradcheck(name: string, fn: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-5;
  const constant = new Set(opts.constant ?? []);
  for (const [i, x] of inputs.entries()) {
    if (!constant.has(i)) assert.equal(x.dtype, 'float64', `${name}: gradcheck inputs must be float64`);
  }
  const gen = new T.Generator(1234);
  const out0 = fn(...inputs);
  const W = T.randn(out0.shape, gen, 'float64');
  const lossOf = () => T.noGrad(() => T.sum(T.mul(fn(...inputs), W)).item());
  // Analytic
  const leaves = inputs.map((x, i) => (constant.has(i) ? x : T.requireGrad(x)));
  for (const l of leaves) l.grad = null;
  const loss = T.sum(T.mul(fn(...leaves), W));
  loss.backward();
  for (const [i, x] of inputs.entries()) {
    if (constant.has(i)) continue;
    const g = x.grad;
    assert.ok(g, `${name}: input ${i} got no gradient`);
    const ga = g.toArray();
    // Finite differences through the raw storage (x may be a strided view).
    const d = x.data as Float64Array;
    const nd = x.ndim;
    const idx = new Array<number>(nd).fill(0);
    for (let k = 0; k < x.size; k++) {
      let p = x.offset;
      for (let j = 0; j < nd; j++) p += idx[j] * x.strides[j];
      const orig = d[p];
      d[p] = orig + eps;
      const lp = lossOf();
      d[p] = orig - eps;
      const lm = lossOf();
      d[p] = orig;
      const num = (lp - lm) / (2 * eps);
      const err = Math.abs(num - ga[k]);
      if (err > atol + rtol * Math.abs(num)) {
        assert.fail(`${name}: d/dinput${i}[${idx.join(',')}] analytic ${ga[k]} vs numeric ${num} (shape [${x.shape}])`);
      }
      for (let j = nd - 1; j >= 0; j--) {
        if (++idx[j] < x.shape[j]) break;
        idx[j] = 0;
      }
    }
    x.grad = null;
    x.requiresGrad = false;
  }
}

/** float64 standard normal tensor from a seeded generator. */
export function rnd(shape: number[], seed = 0): T.Tensor {
  return T.randn(shape, new T.Generator(seed), 'float64');
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < actual.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
  assert.ok(rel <= tol, `${what}: relative L2 error ${rel.toExponential(3)} > ${tol}`);
}
