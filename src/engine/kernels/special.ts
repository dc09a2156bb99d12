// Special functions accurate to float64 round-off (gradient checks difference them in float64).

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** erf(x): series e^{-x²}·Σ 2ⁿx^{2n+1}/(1·3···(2n+1)) for |x| < 3 (all terms positive, no cancellation),
 *  continued fraction for erfc beyond. Relative error ~1e-15. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    const x2 = x * x;
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r;
  }
  const r = 1 - erfcLarge(ax);
  return x < 0 ? -r : r;
}

/** erfc(x) for x >= 3 by the Lentz continued fraction of e^{x²}·erfc(x)·√π = 1/(x+ 1/2/(x+ 1/(x+ 3/2/(x+ ...)))). */
function erfcLarge(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    D = x + a * D;
    D = D === 0 ? tiny : 1 / D;
    C = x + a / C;
    if (C === 0) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}
