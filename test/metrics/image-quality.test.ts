// PSNR and SSIM against values worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gaussianTaps, psnr, ssim, type Planar } from '../../src/metrics/image-quality.js';

const plane = (C: number, H: number, W: number, f: (c: number, y: number, x: number) => number): Planar => {
  const data = new Float64Array(C * H * W);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(c * H + y) * W + x] = f(c, y, x);
  return { data, channels: C, height: H, width: W };
};
const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('PSNR: identical images give Infinity, a constant offset d gives 20·log10(L/d) exactly', () => {
  const a = plane(3, 8, 8, (c, y, x) => ((c * 7 + y * 3 + x) % 11) / 11 - 0.5);
  assert.equal(psnr(a, a, 2), Infinity);
  const b = plane(3, 8, 8, (c, y, x) => a.data[(c * 8 + y) * 8 + x] + 0.02);
  close(psnr(a, b, 2), 40, 1e-9, 'L = 2, d = 0.02');
  const c = plane(3, 8, 8, (c2, y, x) => a.data[(c2 * 8 + y) * 8 + x] - 0.1);
  close(psnr(a, c, 1), 20, 1e-9, 'L = 1, d = 0.1');
  // Half the pixels off by 0.2 (L = 1): MSE = 0.02 → 10·log10(50)
  const d = plane(1, 4, 4, (_, y) => (y < 2 ? 0.2 : 0));
  close(psnr(plane(1, 4, 4, () => 0), d, 1), 10 * Math.log10(50), 1e-12, 'half the pixels');
  assert.throws(() => psnr(a, plane(1, 8, 8, () => 0), 2), /differ in shape/);
  assert.throws(() => psnr(a, a, 0), /data range/);
});

test('SSIM window: the 11 normalised taps of a σ = 1.5 Gaussian', () => {
  const g = gaussianTaps();
  assert.equal(g.length, 11);
  const z = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / 4.5)).reduce((s, v) => s + v, 0);
  close(g[5], 1 / z, 1e-15, 'centre tap');
  close(g[0], Math.exp(-25 / 4.5) / z, 1e-15, 'edge tap');
  close(g.reduce((s, v) => s + v, 0), 1, 1e-15, 'sum');
});

test('SSIM: identical images give 1; constant images give (2ab + C1)/(a² + b² + C1)', () => {
  const a = plane(3, 16, 13, (c, y, x) => Math.sin(c + y * 0.7) * Math.cos(x * 0.3));
  close(ssim(a, a, 2), 1, 1e-12, 'identical');
  // Constant planes: σ = 0, so the structure term is C2/C2 = 1.
  const C1 = (0.01 * 1) ** 2;
  const x = plane(1, 12, 12, () => 0.2), y = plane(1, 12, 12, () => 0.5);
  close(ssim(x, y, 1), (2 * 0.2 * 0.5 + C1) / (0.04 + 0.25 + C1), 1e-12, 'constant images');
  // Per channel, then averaged: channel 0 identical (1), channel 1 the constant pair above.
  const two = plane(2, 12, 12, (c) => (c === 0 ? 0.3 : 0.2)), twoB = plane(2, 12, 12, (c) => (c === 0 ? 0.3 : 0.5));
  close(ssim(two, twoB, 1), (1 + (2 * 0.2 * 0.5 + C1) / (0.04 + 0.25 + C1)) / 2, 1e-12, 'channel mean');
  assert.throws(() => ssim(plane(1, 10, 12, () => 0), plane(1, 10, 12, () => 0), 1), /at least 11×11/);
});

test('SSIM of an 11×11 image pair: the Gaussian-weighted statistics of the one window position', () => {
  const a = plane(1, 11, 11, (_, y, x) => ((y * 5 + x * 3) % 7) / 7);
  const b = plane(1, 11, 11, (_, y, x) => ((y * 2 + x * 5) % 9) / 9);
  // Direct 2-D weights w(y, x) ∝ exp(−((y−5)² + (x−5)²)/(2σ²)), normalised, population statistics.
  let z = 0;
  const w: number[] = [];
  for (let y = 0; y < 11; y++) for (let x = 0; x < 11; x++) { const v = Math.exp(-((y - 5) ** 2 + (x - 5) ** 2) / 4.5); w.push(v); z += v; }
  let mx = 0, my = 0;
  w.forEach((v, i) => { mx += (v / z) * a.data[i]; my += (v / z) * b.data[i]; });
  let vx = 0, vy = 0, cxy = 0;
  w.forEach((v, i) => { vx += (v / z) * (a.data[i] - mx) ** 2; vy += (v / z) * (b.data[i] - my) ** 2; cxy += (v / z) * (a.data[i] - mx) * (b.data[i] - my); });
  const C1 = 1e-4, C2 = 9e-4;
  const expected = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
  close(ssim(a, b, 1), expected, 1e-12, 'one window');
  // Scaled by 2 with data range 2: unchanged (C1, C2 scale with L²). A shift is not neutral: the luminance
  // term compares means, so [0, 1] and [-1, 1] images score differently.
  const a2 = plane(1, 11, 11, (_, y, x) => 2 * a.data[y * 11 + x]), b2 = plane(1, 11, 11, (_, y, x) => 2 * b.data[y * 11 + x]);
  close(ssim(a2, b2, 2), expected, 1e-12, 'range 2');
  const a3 = plane(1, 11, 11, (_, y, x) => 2 * a.data[y * 11 + x] - 1), b3 = plane(1, 11, 11, (_, y, x) => 2 * b.data[y * 11 + x] - 1);
  assert.ok(Math.abs(ssim(a3, b3, 2) - expected) > 1e-3, 'shifted images differ');
  assert.ok(expected > -1 && expected < 0.5, `dissimilar patterns score low: ${expected}`);
});
