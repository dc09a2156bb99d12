// Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
// Assessing Generative Models"; reference code NVlabs/stylegan2-ada's metrics/precision_recall.py):
// each set's manifold is the union of balls around its points with radius = distance to the point's
// k-th nearest neighbour within the same set (the point itself excluded). Precision = the fraction of
// generated samples inside the real manifold; recall = the fraction of real samples inside the generated
// manifold. A point on a ball's boundary counts as inside (distance ≤ radius, as the reference compares).
// Distances are Euclidean, computed in float64.

import type { FeatureMatrix } from './fid.js';

/** Squared distances from each row of `a` to each row of `b` → Float64Array [a.n·b.n]. */
export function pairwiseSqDist(a: FeatureMatrix, b: FeatureMatrix): Float64Array {
  if (a.dim !== b.dim) throw new RangeError(`pairwise distances: feature sizes differ (${a.dim} vs ${b.dim})`);
  const d = a.dim, out = new Float64Array(a.n * b.n);
  for (let i = 0; i < a.n; i++) {
    const ai = i * d;
    for (let j = 0; j < b.n; j++) {
      const bj = j * d;
      let s = 0;
      for (let c = 0; c < d; c++) {
        const t = a.data[ai + c] - b.data[bj + c];
        s += t * t;
      }
      out[i * b.n + j] = s;
    }
  }
  return out;
}

/** Squared distance of every point to its k-th nearest neighbour in the same set (itself excluded). */
export function knnRadiiSq(f: FeatureMatrix, k: number, dist = pairwiseSqDist(f, f)): Float64Array {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k-NN radius: k must be a positive integer, got ${k}`);
  if (f.n <= k) throw new RangeError(`k-NN radius: need more than k = ${k} points, got ${f.n}`);
  const r = new Float64Array(f.n);
  const row = new Float64Array(f.n - 1);
  for (let i = 0; i < f.n; i++) {
    let p = 0;
    for (let j = 0; j < f.n; j++) if (j !== i) row[p++] = dist[i * f.n + j];
    row.sort();
    r[i] = row[k - 1];
  }
  return r;
}

/** Fraction of `query` points inside the manifold of `ref` (some ref point r with ‖q − r‖ ≤ radius(r)). */
export function manifoldCoverage(ref: FeatureMatrix, radiiSq: Float64Array, query: FeatureMatrix): number {
  const d = pairwiseSqDist(query, ref);
  let inside = 0;
  for (let i = 0; i < query.n; i++) {
    for (let j = 0; j < ref.n; j++) {
      if (d[i * ref.n + j] <= radiiSq[j]) {
        inside++;
        break;
      }
    }
  }
  return inside / query.n;
}

export interface PrecisionRecall {
  precision: number;
  recall: number;
  k: number;
}

/** Improved precision and recall of generated features against real ones (k = 3 by default, as the paper). */
export function precisionRecall(real: FeatureMatrix, fake: FeatureMatrix, k = 3): PrecisionRecall {
  const rr = knnRadiiSq(real, k), rf = knnRadiiSq(fake, k);
  return { precision: manifoldCoverage(real, rr, fake), recall: manifoldCoverage(fake, rf, real), k };
}
