// Peak memory of the fused attention for 4,096 tokens (a 64×64 latent) is O(tokens), not O(tokens²):
// the full score matrix of one head would be 4096² × 4 B = 64 MiB; the kernel may use a few tiles of it.
// Measured in a child process through its peak RSS (getrusage maxrss), after the inputs exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/engine/index.js';

const MiB = 1024 * 1024;

function child(): void {
  const gen = new T.Generator(3);
  const [B, L, D] = [2, 4096, 64];
  const q = T.keep(T.randn([B, L, D], gen)), k = T.keep(T.randn([B, L, D], gen)), v = T.keep(T.randn([B, L, D], gen));
  // Warm up on a small problem so code paths and thread pools exist before the baseline.
  T.tidy(() => {
    const s = T.slice(q, 1, 0, 64);
    T.attention(s, s, s, 0.125).toArray();
  });
  const qg = T.requireGrad(T.keep(T.randn([B, L, D], gen)));
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.resourceUsage().maxRSS * 1024;
  const rssBefore = process.memoryUsage().rss;
  const fwd = T.tidy(() => T.noGrad(() => T.sum(T.attention(q, k, v, 0.125)).item()));
  const peakFwd = process.resourceUsage().maxRSS * 1024;
  T.tidy(() => {
    T.sum(T.attention(qg, k, v, 0.125)).backward();
  });
  const peakBwd = process.resourceUsage().maxRSS * 1024;
  console.log('ATTN_REPORT ' + JSON.stringify({ backend: T.backendName(), base, rssBefore, peakFwd, peakBwd, fwd }));
}

if (process.env.LDM_ATTN_CHILD) child();
else {
  test('attention over 4,096 tokens: peak memory O(tokens), far below one score matrix (64 MiB)', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, LDM_ATTN_CHILD: '1' },
      encoding: 'utf8',
      timeout: 300_000,
    });
    const line = r.stdout.split('\n').find((l) => l.startsWith('ATTN_REPORT '));
    assert.ok(r.status === 0 && line, `child failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    const rep = JSON.parse(line!.slice('ATTN_REPORT '.length));
    const start = Math.max(rep.base, rep.rssBefore);
    const fwd = (rep.peakFwd - start) / MiB, bwd = (rep.peakBwd - start) / MiB;
    console.log(`# attention 2×4096×64 (${rep.backend} kernels): peak RSS growth forward ${fwd.toFixed(1)} MiB, forward+backward ${bwd.toFixed(1)} MiB (one score matrix: 64 MiB per head, 128 MiB for both)`);
    assert.ok(Number.isFinite(rep.fwd));
    // Output and logsumexp are 2 MiB; the backward adds gradients of q, k, v, per-thread key/value
    // gradient accumulators and tiles (measured: ~28 MiB native, ~3 MiB TypeScript). An O(tokens²)
    // kernel needs at least one 64 MiB score matrix forward, and probabilities plus their gradient backward.
    assert.ok(fwd < 16, `forward peak grew by ${fwd.toFixed(1)} MiB`);
    assert.ok(bwd < 48, `forward+backward peak grew by ${bwd.toFixed(1)} MiB`);
  });
}
