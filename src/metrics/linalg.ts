// Dense float64 linear algebra for the metrics: symmetric eigen-decomposition (Householder reduction to
// tridiagonal form, then the implicit QL algorithm with Wilkinson-like shifts — EISPACK tred2/tql2), matrix
// products and the symmetric PSD square root. Matrices are row-major Float64Array of n·n values.

/** C = A·B for row-major A [n, k], B [k, m]. */
export function matmul64(a: Float64Array, b: Float64Array, n: number, k: number, m: number): Float64Array {
  if (a.length !== n * k || b.length !== k * m) throw new RangeError(`matmul64: sizes ${a.length}, ${b.length} do not fit [${n}, ${k}]·[${k}, ${m}]`);
  const c = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const ci = i * m;
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p];
      if (v === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) c[ci + j] += v * b[bp + j];
    }
  }
  return c;
}

export interface SymEig {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Eigenvectors as columns of a row-major n×n matrix (vectors[i·n + j] = component i of vector j); null when not asked for. */
  vectors: Float64Array | null;
}

/**
 * Eigen-decomposition of the symmetric matrix `a` (n×n, row-major; only its values are read, it is not
 * modified). Householder tridiagonalisation followed by implicit QL iterations, both in float64.
 */
export function symmetricEigen(a: Float64Array, n: number, wantVectors = true): SymEig {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values do not form a ${n}×${n} matrix`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new RangeError(`symmetricEigen: entry ${Math.floor(i / n)},${i % n} is ${a[i]}`);
  // Work on the transpose layout z[j][i] = V[i][j] so the inner loops run over contiguous memory
  // (a is symmetric, so its copy is its own transpose).
  const z = Float64Array.from(a);
  const d = new Float64Array(n), e = new Float64Array(n);
  tred2(z, d, e, n, wantVectors);
  tql2(z, d, e, n, wantVectors);
  // Sort ascending (tql2 leaves them almost sorted).
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = Float64Array.from(order, (i) => d[i]);
  let vectors: Float64Array | null = null;
  if (wantVectors) {
    vectors = new Float64Array(n * n);
    // z row r holds eigenvector r (components over i).
    for (let j = 0; j < n; j++) {
      const r = order[j] * n;
      for (let i = 0; i < n; i++) vectors[i * n + j] = z[r + i];
    }
  }
  return { values, vectors };
}

// Householder reduction of a symmetric matrix to tridiagonal form (JAMA's tred2, on the transposed
// layout: Z[j*n + i] stands for V[i][j]). On exit d = diagonal, e = sub-diagonal (e[0] = 0), and Z holds
// the accumulated orthogonal transformation.
function tred2(Z: Float64Array, d: Float64Array, e: Float64Array, n: number, accumulate: boolean): void {
  const V = (i: number, j: number) => j * n + i;
  for (let j = 0; j < n; j++) d[j] = Z[V(n - 1, j)];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0, h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = Z[V(i - 1, j)];
        Z[V(i, j)] = 0;
        Z[V(j, i)] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        Z[V(j, i)] = f;
        g = e[j] + Z[V(j, j)] * f;
        const colJ = j * n; // V[k][j] for k = j+1..i-1 is contiguous in the transposed layout
        for (let k = j + 1; k <= i - 1; k++) {
          const vkj = Z[colJ + k];
          g += vkj * d[k];
          e[k] += vkj * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const colJ = j * n;
        for (let k = j; k <= i - 1; k++) Z[colJ + k] -= f * e[k] + g * d[k];
        d[j] = Z[V(i - 1, j)];
        Z[V(i, j)] = 0;
      }
    }
    d[i] = h;
  }
  if (!accumulate) {
    // Eigenvalues only: the diagonal of the reduced matrix is all that is left to read.
    for (let j = 0; j < n; j++) d[j] = Z[V(j, j)];
    e[0] = 0;
    return;
  }
  // Accumulate transformations.
  for (let i = 0; i < n - 1; i++) {
    Z[V(n - 1, i)] = Z[V(i, i)];
    Z[V(i, i)] = 1;
    const h = d[i + 1];
    const colI1 = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = Z[colI1 + k] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        const colJ = j * n;
        for (let k = 0; k <= i; k++) g += Z[colI1 + k] * Z[colJ + k];
        for (let k = 0; k <= i; k++) Z[colJ + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) Z[colI1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = Z[V(n - 1, j)];
    Z[V(n - 1, j)] = 0;
  }
  Z[V(n - 1, n - 1)] = 1;
  e[0] = 0;
}

// Symmetric tridiagonal QL algorithm (JAMA's tql2) on the transposed layout.
function tql2(Z: Float64Array, d: Float64Array, e: Float64Array, n: number, wantVectors: boolean): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  if (n > 0) e[n - 1] = 0;
  let f = 0, tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new Error(`symmetricEigen: QL iteration did not converge for eigenvalue ${l} of ${n}`);
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1, c2 = c, c3 = c;
        const el1 = e[l + 1];
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (wantVectors) {
            const ri = i * n, ri1 = (i + 1) * n;
            for (let k = 0; k < n; k++) {
              const zk = Z[ri1 + k];
              Z[ri1 + k] = s * Z[ri + k] + c * zk;
              Z[ri + k] = c * Z[ri + k] - s * zk;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** The PSD square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix (negative round-off eigenvalues clamp to 0). */
export function sqrtmPsd(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n, true);
  const v = vectors!;
  // W = V·diag(λ^¼); result = W·Wᵀ = V·diag(√λ)·Vᵀ (symmetric by construction).
  const w = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const s = Math.sqrt(Math.sqrt(Math.max(values[j], 0)));
    for (let i = 0; i < n; i++) w[i * n + j] = v[i * n + j] * s;
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i; k < n; k++) {
      let acc = 0;
      const wi = i * n, wk = k * n;
      for (let j = 0; j < n; j++) acc += w[wi + j] * w[wk + j];
      out[i * n + k] = acc;
      out[k * n + i] = acc;
    }
  }
  return out;
}
