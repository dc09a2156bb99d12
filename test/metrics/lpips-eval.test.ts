// LPIPS in the reconstruction report, with weights from a checkpoint that holds loss.perceptual_loss.* (as a
// first stage trained with the perceptual loss does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { LPIPS } from '../../src/models/losses/lpips.js';
import { evaluateReconstruction, loadLpips } from '../../src/metrics/eval.js';
import type { ImageSet } from '../../src/metrics/images.js';

test('loadLpips finds the perceptual_loss prefix; LPIPS is 0 for exact reconstructions and positive otherwise', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ldm-lpips-'));
  try {
    T.manualSeed(5);
    const src = new LPIPS(false);
    // Trained LPIPS heads are non-negative (PerceptualSimilarity clamps them): make the random ones so.
    for (const [k, t] of src.stateDict()) if (k.startsWith('lin')) (t.data as Float32Array).forEach((v, i, a) => (a[i] = Math.abs(v)));
    const file = path.join(dir, 'ae.safetensors');
    writeSafetensors(file, new Map([...src.stateDict()].map(([k, t]) => [`loss.perceptual_loss.${k}`, t] as [string, T.Tensor])));
    const lp = loadLpips({ full: file });
    const g = new T.Generator(1);
    const img = () => Float32Array.from({ length: 3 * 16 * 16 }, () => 2 * g.uniform() - 1);
    const set: ImageSet = { images: [img(), img()], channels: 3, height: 16, width: 16, labels: [undefined, undefined], names: ['a', 'b'] };
    const exact = evaluateReconstruction((x) => x, set, { lpips: lp });
    assert.equal(exact.lpips, 0);
    assert.equal(exact.psnr, Infinity);
    assert.equal(exact.psnr_identical, 2);
    assert.ok(Math.abs(exact.ssim - 1) < 1e-12);
    const noisy = evaluateReconstruction((x) => T.clamp(T.mulScalar(x, 0.5), -1, 1), set, { lpips: lp });
    // The same network weights as the source module give the same distance.
    const x = T.tensor(set.images[0], [1, 3, 16, 16]);
    const direct = T.noGrad(() => src.eval().forward(x, T.mulScalar(x, 0.5)).item());
    const first = T.noGrad(() => lp.forward(x, T.mulScalar(x, 0.5)).item());
    assert.ok(Math.abs(direct - first) < 1e-6 && direct > 0, `${direct} vs ${first}`);
    assert.ok(noisy.lpips! > 0 && Number.isFinite(noisy.psnr) && noisy.ssim < 1);
    // A file without the heads is refused, naming what is missing.
    const partial = path.join(dir, 'partial.safetensors');
    writeSafetensors(partial, new Map([...src.stateDict()].filter(([k]) => !k.startsWith('lin')).map(([k, t]) => [`loss.perceptual_loss.${k}`, t] as [string, T.Tensor])));
    assert.throws(() => loadLpips({ full: partial }), /LPIPS weights incomplete: 5 missing \(lin0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
