// Improved precision / recall on point sets whose answer can be read off by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureMatrix } from '../../src/metrics/fid.js';
import { knnRadiiSq, precisionRecall } from '../../src/metrics/precision-recall.js';

/** Points on the x axis of a 2-D feature space. */
const line = (xs: number[]) => featureMatrix(Float64Array.from(xs.flatMap((x) => [x, 0])), 2);
const real = line([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

test('k-NN radii exclude the point itself', () => {
  assert.deepEqual([...knnRadiiSq(real, 1)], new Array(10).fill(1));
  // k = 3: the ends reach 3 away, the inner points 2 (two on each side), 1 and 8 reach 2 as well.
  assert.deepEqual([...knnRadiiSq(real, 3)].map(Math.sqrt), [3, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
  assert.throws(() => knnRadiiSq(line([0, 1, 2]), 3), /more than k = 3/);
});

test('precision and recall: k = 1 and the default k = 3', () => {
  // Fakes on the first four reals: all inside the real manifold; their own balls (radius 1) cover reals 0–4.
  const r1 = precisionRecall(real, line([0, 1, 2, 3]), 1);
  assert.deepEqual([r1.precision, r1.recall], [1, 0.5]);
  // k = 3: −2.5 is within 3 of real 0, 11.5 within 3 of real 9, 4.5 within 2 of 4 and 5, 30 is outside.
  // The fakes' 3-NN radii: −2.5 → 14 (to 11.5), 4.5 → 25.5 (to 30), 11.5 → 18.5, 30 → 32.5: every real is covered.
  const r3 = precisionRecall(real, line([-2.5, 11.5, 4.5, 30]));
  assert.equal(r3.k, 3);
  assert.deepEqual([r3.precision, r3.recall], [0.75, 1]);
  // Far-away fakes: nothing inside either way.
  const far = precisionRecall(real, line([100, 101, 102, 103, 104]), 1);
  assert.deepEqual([far.precision, far.recall], [0, 0]);
});

test('a point on a ball boundary counts as inside', () => {
  const r = precisionRecall(line([0, 1, 2]), line([3, 10, 20]), 1);
  // 3 is exactly radius 1 from real 2; 10 and 20 are far. The fakes' radii are 7, 7, 10: fake 3's ball reaches all reals.
  assert.equal(r.precision, 1 / 3);
  assert.equal(r.recall, 1);
  const shy = precisionRecall(line([0, 1, 2]), line([3.000001, 10, 20]), 1);
  assert.equal(shy.precision, 0);
});
