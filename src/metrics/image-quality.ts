// Full-reference image quality: PSNR and SSIM per image, computed in float64.
//
// PSNR = 10·log10(L² / MSE) over all C·H·W values of one image (L = the data range; ∞ when the images
// are identical), as skimage.metrics.peak_signal_noise_ratio.
//
// SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to
// structural similarity"): local statistics under an 11×11 Gaussian window (σ = 1.5, normalised),
//   SSIM(x, y) = (2μₓμᵧ + C₁)(2σₓᵧ + C₂) / ((μₓ² + μᵧ² + C₁)(σₓ² + σᵧ² + C₂)),  C₁ = (0.01·L)², C₂ = (0.03·L)²,
// with population (biased) local variances, averaged over the positions where the window lies wholly inside
// the image, per channel, then over channels. This is skimage's structural_similarity with
// gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L (the settings its docs give for
// reproducing Wang et al.) and torchmetrics' StructuralSimilarityIndexMeasure (kernel 11, σ 1.5): both
// filter over a padded image and then crop 5 pixels from each border, which leaves exactly these
// window-inside positions, so the padding mode never enters the result.

export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
export const SSIM_K1 = 0.01;
export const SSIM_K2 = 0.03;

/** One image as planar float values [C, H, W]. */
export interface Planar {
  data: ArrayLike<number>;
  channels: number;
  height: number;
  width: number;
}

function checkPair(a: Planar, b: Planar, what: string): void {
  if (a.channels !== b.channels || a.height !== b.height || a.width !== b.width) {
    throw new RangeError(`${what}: images differ in shape ([${a.channels}, ${a.height}, ${a.width}] vs [${b.channels}, ${b.height}, ${b.width}])`);
  }
  const n = a.channels * a.height * a.width;
  if (a.data.length !== n || b.data.length !== n) throw new RangeError(`${what}: expected ${n} values per image, got ${a.data.length} and ${b.data.length}`);
}

function checkRange(range: number, what: string): void {
  if (!(range > 0) || !Number.isFinite(range)) throw new RangeError(`${what}: data range must be a positive number, got ${range}`);
}

/** Peak signal-to-noise ratio in dB (Infinity for identical images). */
export function psnr(a: Planar, b: Planar, dataRange: number): number {
  checkPair(a, b, 'psnr');
  checkRange(dataRange, 'psnr');
  let se = 0;
  const n = a.data.length;
  for (let i = 0; i < n; i++) {
    const d = a.data[i] - b.data[i];
    se += d * d;
  }
  const mse = se / n;
  return mse === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / mse);
}

/** The normalised 1-D Gaussian taps of the SSIM window (the 2-D window is their outer product). */
export function gaussianTaps(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const r = (size - 1) / 2;
  const g = Float64Array.from({ length: size }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const s = g.reduce((x, y) => x + y, 0);
  return g.map((v) => v / s);
}

/** Separable 'valid' filtering of one plane: [H, W] → [H − k + 1, W − k + 1]. */
function filterValid(src: Float64Array, H: number, W: number, g: Float64Array): Float64Array {
  const k = g.length, OH = H - k + 1, OW = W - k + 1;
  const tmp = new Float64Array(H * OW);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += g[t] * src[y * W + x + t];
      tmp[y * OW + x] = s;
    }
  }
  const out = new Float64Array(OH * OW);
  for (let y = 0; y < OH; y++) {
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += g[t] * tmp[(y + t) * OW + x];
      out[y * OW + x] = s;
    }
  }
  return out;
}

/** Mean SSIM of one image pair (per channel, then averaged over channels). */
export function ssim(a: Planar, b: Planar, dataRange: number): number {
  checkPair(a, b, 'ssim');
  checkRange(dataRange, 'ssim');
  const { channels: C, height: H, width: W } = a;
  if (H < SSIM_WINDOW || W < SSIM_WINDOW) throw new RangeError(`ssim: images must be at least ${SSIM_WINDOW}×${SSIM_WINDOW} for the Gaussian window, got ${H}×${W}`);
  const g = gaussianTaps();
  const c1 = (SSIM_K1 * dataRange) ** 2, c2 = (SSIM_K2 * dataRange) ** 2;
  const plane = H * W;
  let total = 0;
  for (let c = 0; c < C; c++) {
    const x = new Float64Array(plane), y = new Float64Array(plane);
    const xx = new Float64Array(plane), yy = new Float64Array(plane), xy = new Float64Array(plane);
    for (let i = 0; i < plane; i++) {
      const u = a.data[c * plane + i], v = b.data[c * plane + i];
      x[i] = u;
      y[i] = v;
      xx[i] = u * u;
      yy[i] = v * v;
      xy[i] = u * v;
    }
    const mx = filterValid(x, H, W, g), my = filterValid(y, H, W, g);
    const exx = filterValid(xx, H, W, g), eyy = filterValid(yy, H, W, g), exy = filterValid(xy, H, W, g);
    let s = 0;
    for (let i = 0; i < mx.length; i++) {
      const vx = exx[i] - mx[i] * mx[i], vy = eyy[i] - my[i] * my[i], cxy = exy[i] - mx[i] * my[i];
      s += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
    }
    total += s / mx.length;
  }
  return total / C;
}
