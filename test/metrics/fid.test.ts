// Fréchet distance and its linear algebra against closed forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureMatrix, fidFromFeatures, frechetDistance, gaussianStats, traceSqrtProduct, type GaussianStats } from '../../src/metrics/fid.js';
import { matmul64, sqrtmPsd, symmetricEigen } from '../../src/metrics/linalg.js';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

/** A deterministic pseudo-random stream in [-0.5, 0.5). */
function stream(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
function randomMatrix(n: number, m: number, seed: number): Float64Array {
  const r = stream(seed);
  return Float64Array.from({ length: n * m }, r);
}
const transpose = (a: Float64Array, n: number) => Float64Array.from({ length: n * n }, (_, k) => a[(k % n) * n + Math.floor(k / n)]);
/** An orthogonal matrix: the eigenvectors of a random symmetric one. */
function rotation(n: number, seed: number): Float64Array {
  const b = randomMatrix(n, n, seed);
  return symmetricEigen(matmul64(b, transpose(b, n), n, n, n), n).vectors!;
}
const stats = (mu: number[], sigma: Float64Array): GaussianStats => ({ mu: Float64Array.from(mu), sigma, dim: mu.length, n: 0 });

test('symmetric eigen-decomposition reconstructs the matrix; the PSD square root squares back', () => {
  for (const n of [1, 2, 3, 17, 40]) {
    const b = randomMatrix(n, n, n);
    const a = Float64Array.from({ length: n * n }, (_, k) => b[k] + b[(k % n) * n + Math.floor(k / n)]);
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 1; i < n; i++) assert.ok(values[i] >= values[i - 1], 'ascending');
    let err = 0, orth = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        let s = 0, o = 0;
        for (let j = 0; j < n; j++) {
          s += vectors![i * n + j] * values[j] * vectors![k * n + j];
          o += vectors![j * n + i] * vectors![j * n + k];
        }
        err = Math.max(err, Math.abs(s - a[i * n + k]));
        orth = Math.max(orth, Math.abs(o - (i === k ? 1 : 0)));
      }
    }
    assert.ok(err < 1e-12 && orth < 1e-12, `n = ${n}: reconstruction ${err}, orthogonality ${orth}`);
    const valuesOnly = symmetricEigen(a, n, false).values;
    valuesOnly.forEach((v, i) => close(v, values[i], 1e-12, `eigenvalue ${i} without vectors`));
  }
  // Known spectrum: diag(4, 1, 9) rotated.
  const q = rotation(3, 7);
  const d = Float64Array.from([4, 0, 0, 0, 1, 0, 0, 0, 9]);
  const a = matmul64(matmul64(q, d, 3, 3, 3), transpose(q, 3), 3, 3, 3);
  assert.deepEqual([...symmetricEigen(a, 3).values].map((v) => Math.round(v * 1e9) / 1e9), [1, 4, 9]);
  const r = sqrtmPsd(a, 3), rr = matmul64(r, r, 3, 3, 3);
  rr.forEach((v, i) => close(v, a[i], 1e-12, `sqrt² entry ${i}`));
  // A singular PSD matrix (rank 1) has a square root too.
  const s = sqrtmPsd(Float64Array.from([1, 2, 2, 4]), 2);
  [1 / Math.sqrt(5), 2 / Math.sqrt(5), 2 / Math.sqrt(5), 4 / Math.sqrt(5)].forEach((v, i) => close(s[i], v, 1e-12, `rank-1 root ${i}`));
});

test('Fréchet distance: diagonal covariances, commuting covariances, a 2×2 non-commuting pair', () => {
  // Diagonal: ‖Δμ‖² + Σ (√a − √b)².
  const a = [1, 4, 0.25, 9], b = [4, 1, 1, 0];
  const diag = (v: number[]) => Float64Array.from({ length: 16 }, (_, k) => (k % 5 === 0 ? v[k / 5] : 0));
  const expected = 1 + 4 + 0 + 0 + a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i])) ** 2, 0);
  close(frechetDistance(stats([1, 2, 0, 0], diag(a)), stats([0, 0, 0, 0], diag(b))), expected, 1e-12, 'diagonal');
  // Commuting: the same rotation of two diagonals gives the same distance.
  const n = 12, q = rotation(n, 3);
  const va = Array.from({ length: n }, (_, i) => 0.5 + i), vb = Array.from({ length: n }, (_, i) => 0.1 + ((i * 7) % 5));
  const rot = (v: number[]) => matmul64(matmul64(q, Float64Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? v[k / (n + 1)] : 0)), n, n, n), transpose(q, n), n, n, n);
  const zero = new Array<number>(n).fill(0);
  close(frechetDistance(stats(zero, rot(va)), stats(zero, rot(vb))), va.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(vb[i])) ** 2, 0), 1e-10, 'commuting');
  // 2×2: tr √M = √(tr M + 2√det M) for M = Σ1Σ2 with non-negative eigenvalues.
  const s1 = Float64Array.from([2, 1, 1, 3]), s2 = Float64Array.from([1, -0.5, -0.5, 2]);
  const m = matmul64(s1, s2, 2, 2, 2);
  const trSqrt = Math.sqrt(m[0] + m[3] + 2 * Math.sqrt((2 * 3 - 1) * (2 - 0.25)));
  close(traceSqrtProduct(s1, s2, 2), trSqrt, 1e-12, 'tr √(Σ1Σ2)');
  close(frechetDistance(stats([0, 0], s1), stats([1, 1], s2)), 2 + 5 + 3 - 2 * trSqrt, 1e-12, '2×2 distance');
});

test('FID from features: unbiased covariance, identical sets → 0, a shift by v → ‖v‖²', () => {
  const g = gaussianStats(featureMatrix(Float64Array.from([0, 0, 2, 0, 0, 2, 2, 2]), 2));
  assert.deepEqual([...g.mu], [1, 1]);
  assert.deepEqual([...g.sigma], [4 / 3, 0, 0, 4 / 3]);
  const dim = 16, n = 200;
  const x = randomMatrix(n, dim, 11);
  // Correlated features (x · B) so the covariance is full.
  const f = matmul64(x, randomMatrix(dim, dim, 5), n, dim, dim);
  const fm = featureMatrix(f, dim);
  assert.ok(fidFromFeatures(fm, fm) < 1e-9, `identical: ${fidFromFeatures(fm, fm)}`);
  const v = Array.from({ length: dim }, (_, j) => (j % 3) - 1 + 0.25);
  const shifted = featureMatrix(Float64Array.from(f, (val, k) => val + v[k % dim]), dim);
  close(fidFromFeatures(fm, shifted), v.reduce((s, t) => s + t * t, 0), 1e-8, 'shift');
  // Scaling all features by 2: ‖0‖² + tr Σ + 4 tr Σ − 2·2 tr Σ = tr Σ.
  const scaled = featureMatrix(Float64Array.from(f, (val, k) => 2 * (val - gaussianStats(fm).mu[k % dim]) + gaussianStats(fm).mu[k % dim]), dim);
  const st = gaussianStats(fm);
  let tr = 0;
  for (let j = 0; j < dim; j++) tr += st.sigma[j * dim + j];
  close(fidFromFeatures(fm, scaled), tr, 1e-8, 'scale 2');
  // Fewer samples than features: singular covariances are fine.
  const few = featureMatrix(f.subarray(0, 5 * dim), dim);
  assert.ok(Number.isFinite(fidFromFeatures(few, fm)));
  assert.throws(() => gaussianStats(featureMatrix(new Float64Array(dim), dim)), /at least 2/);
  assert.throws(() => fidFromFeatures(fm, featureMatrix(new Float64Array(8), 4)), /feature sizes differ/);
});
