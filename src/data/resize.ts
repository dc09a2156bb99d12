// Image resampling exactly as Pillow's Image.resize computes it for 8-bit images (libImaging/Resample.c):
// a separable, antialiased convolution whose filter support widens with the downscale factor, weights
// normalised per output pixel and rounded to 22-bit fixed point, the horizontal pass first (rounded to
// 8 bits), then the vertical one. The reference resizes with PIL (ldm/data/lsun.py: bicubic by default),
// so the same file gives the same bytes here.

export type Interpolation = 'box' | 'bilinear' | 'bicubic' | 'lanczos';

interface Filter {
  support: number;
  f: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<Interpolation, Filter> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, f: (x) => (x < 0 && (x = -x), x < 1 ? 1 - x : 0) },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

export const INTERPOLATIONS = Object.keys(FILTERS) as Interpolation[];

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** Per output pixel: first input index, count, and fixed-point weights (ksize per pixel). */
function coefficients(inSize: number, outSize: number, filter: Filter): { ksize: number; bounds: Int32Array; kk: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

// As Pillow's clip8: the sum is an integer; below 2^30 after the first test, so the shift is exact.
function clip8(ss: number): number {
  if (ss >= 256 * ONE) return 255;
  if (ss <= 0) return 0;
  return ss >> PRECISION_BITS;
}

/**
 * Resize interleaved 8-bit pixels (`channels` values per pixel, row-major) from w×h to outW×outH, as
 * PIL's `Image.resize((outW, outH), resample)` does.
 */
export function resizeU8(src: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number, interpolation: Interpolation = 'bicubic'): Uint8Array {
  const filter = FILTERS[interpolation];
  if (!filter) throw new RangeError(`resize: unknown interpolation '${interpolation}' (one of ${INTERPOLATIONS.join(', ')})`);
  if (!(outW >= 1 && outH >= 1 && Number.isInteger(outW) && Number.isInteger(outH))) throw new RangeError(`resize: bad output size ${outW}×${outH}`);
  if (src.length !== w * h * channels) throw new RangeError(`resize: ${src.length} bytes for ${w}×${h}×${channels}`);
  if (outW === w && outH === h) return src.slice();
  const C = channels;
  let cur = src, curW = w;
  const half = ONE / 2;
  if (outW !== w) {
    const { ksize, bounds, kk } = coefficients(w, outW, filter);
    // Only the rows the vertical pass reads (PIL computes the same subset; the values do not depend on it).
    const tmp = new Uint8Array(outW * h * C);
    for (let y = 0; y < h; y++) {
      const row = y * w * C;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1], k0 = xx * ksize, o = (y * outW + xx) * C;
        if (C === 3) {
          let s0 = half, s1 = half, s2 = half;
          for (let x = 0, q = row + xmin * 3; x < xmax; x++, q += 3) {
            const k = kk[k0 + x];
            s0 += src[q] * k;
            s1 += src[q + 1] * k;
            s2 += src[q + 2] * k;
          }
          tmp[o] = clip8(s0);
          tmp[o + 1] = clip8(s1);
          tmp[o + 2] = clip8(s2);
        } else {
          for (let c = 0; c < C; c++) {
            let ss = half;
            for (let x = 0; x < xmax; x++) ss += src[row + (x + xmin) * C + c] * kk[k0 + x];
            tmp[o + c] = clip8(ss);
          }
        }
      }
    }
    cur = tmp;
    curW = outW;
  }
  if (outH === h) return cur;
  const { ksize, bounds, kk } = coefficients(h, outH, filter);
  const out = new Uint8Array(curW * outH * C);
  const stride = curW * C;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1], k0 = yy * ksize;
    for (let i = 0; i < stride; i++) {
      let ss = half;
      for (let y = 0; y < ymax; y++) ss += cur[(y + ymin) * stride + i] * kk[k0 + y];
      out[yy * stride + i] = clip8(ss);
    }
  }
  return out;
}
