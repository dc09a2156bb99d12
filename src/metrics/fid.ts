// Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge
// to a local Nash equilibrium"): the Fréchet distance between two Gaussians fitted to feature sets,
//   d² = ‖μ₁ − μ₂‖² + tr(Σ₁) + tr(Σ₂) − 2·tr((Σ₁Σ₂)^½).
// As pytorch-fid's fid_score.py: means and covariances in float64, covariance with the unbiased (N − 1)
// normalisation (numpy.cov(rowvar=False)). The trace of the square root is computed through the symmetric
// matrix S = Σ₁^½ Σ₂ Σ₁^½, which is similar to Σ₁Σ₂ (same eigenvalues, all ≥ 0), so
// tr((Σ₁Σ₂)^½) = Σᵢ √λᵢ(S): two symmetric eigen-decompositions instead of scipy's general sqrtm, with no
// complex round-off to discard and no ε·I retry needed for singular covariances.

import { matmul64, sqrtmPsd, symmetricEigen } from './linalg.js';

/** Features as rows: `data` holds n·dim values (row i = sample i). */
export interface FeatureMatrix {
  data: Float64Array | Float32Array;
  n: number;
  dim: number;
}

export interface GaussianStats {
  mu: Float64Array;
  /** dim×dim row-major covariance (unbiased). */
  sigma: Float64Array;
  dim: number;
  n: number;
}

export function featureMatrix(data: Float64Array | Float32Array, dim: number): FeatureMatrix {
  if (!Number.isInteger(dim) || dim <= 0 || data.length % dim !== 0) throw new RangeError(`features: ${data.length} values are not rows of ${dim}`);
  return { data, n: data.length / dim, dim };
}

/** Mean and unbiased covariance of the rows, in float64. Needs at least 2 rows. */
export function gaussianStats(f: FeatureMatrix): GaussianStats {
  const { data, n, dim } = f;
  if (n < 2) throw new RangeError(`gaussianStats: need at least 2 feature vectors for a covariance, got ${n}`);
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mu[j] += data[i * dim + j];
  for (let j = 0; j < dim; j++) mu[j] /= n;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new RangeError(`gaussianStats: feature ${i % dim} of sample ${Math.floor(i / dim)} is ${data[i]}`);
  }
  const sigma = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) row[j] = data[i * dim + j] - mu[j];
    for (let a = 0; a < dim; a++) {
      const v = row[a];
      if (v === 0) continue;
      const base = a * dim;
      for (let b = a; b < dim; b++) sigma[base + b] += v * row[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = sigma[a * dim + b] / (n - 1);
      sigma[a * dim + b] = v;
      sigma[b * dim + a] = v;
    }
  }
  return { mu, sigma, dim, n };
}

/** tr((Σ₁Σ₂)^½) for symmetric PSD Σ₁, Σ₂ (dim×dim). */
export function traceSqrtProduct(s1: Float64Array, s2: Float64Array, dim: number): number {
  const r1 = sqrtmPsd(s1, dim);
  const m = matmul64(matmul64(r1, s2, dim, dim, dim), r1, dim, dim, dim);
  // Symmetrise away round-off before the symmetric solver.
  for (let i = 0; i < dim; i++) {
    for (let j = i + 1; j < dim; j++) {
      const v = 0.5 * (m[i * dim + j] + m[j * dim + i]);
      m[i * dim + j] = v;
      m[j * dim + i] = v;
    }
  }
  const { values } = symmetricEigen(m, dim, false);
  let t = 0;
  for (const v of values) t += Math.sqrt(Math.max(v, 0));
  return t;
}

/** The Fréchet distance d² between N(μ₁, Σ₁) and N(μ₂, Σ₂). */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.dim !== b.dim) throw new RangeError(`frechetDistance: feature sizes differ (${a.dim} vs ${b.dim})`);
  const d = a.dim;
  let diff = 0, tr = 0;
  for (let j = 0; j < d; j++) {
    diff += (a.mu[j] - b.mu[j]) ** 2;
    tr += a.sigma[j * d + j] + b.sigma[j * d + j];
  }
  const fd = diff + tr - 2 * traceSqrtProduct(a.sigma, b.sigma, d);
  // Identical statistics give 0 up to round-off; never report a negative distance.
  return Math.max(fd, 0);
}

/** FID between two feature sets (rows). */
export function fidFromFeatures(x: FeatureMatrix, y: FeatureMatrix): number {
  return frechetDistance(gaussianStats(x), gaussianStats(y));
}
