// Adam / AdamW on float32 parameters against PyTorch's own optimizers (python3-torch, CPU), bit for bit, with
// the native and the TypeScript kernels: five steps over gradients from 1e-3 to 10, L2 decay + amsgrad, decoupled
// decay + maximize, an element count off the vector widths (the kernels' tails).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { K, tsKernels } from '../../src/engine/kernels/index.js';
import { nativeAvailable } from '../../src/engine/kernels/native.js';
import { Adam, AdamW, Parameter, type Optimizer } from '../../src/nn/index.js';

const python = '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
const required = process.env.CI === 'true';
const skip = probe.status === 0 || required ? false : `PyTorch not importable by ${python} (apt-get install python3-torch)`;

const N = 10_003, STEPS = 5;

const CASES: { name: string; torch: string; ours: (ps: Parameter[]) => Optimizer<Record<string, number | boolean>> }[] = [
  { name: 'Adam, L2 decay, amsgrad', torch: 'torch.optim.Adam([p], lr=1e-3, weight_decay=0.1, amsgrad=True)',
    ours: (ps) => new Adam(ps, { lr: 1e-3, weight_decay: 0.1, amsgrad: true }) },
  { name: 'AdamW, betas, eps, decay, maximize', torch: 'torch.optim.AdamW([p], lr=2e-2, betas=(0.5, 0.95), eps=1e-6, weight_decay=0.3, maximize=True)',
    ours: (ps) => new AdamW(ps, { lr: 2e-2, betas: [0.5, 0.95], eps: 1e-6, weight_decay: 0.3, maximize: true }) },
  { name: 'AdamW defaults', torch: 'torch.optim.AdamW([p], lr=5.12e-4)', ours: (ps) => new AdamW(ps, { lr: 5.12e-4 }) },
];

const SCRIPT = `
import sys, numpy as np, torch
d, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
w0 = np.fromfile(d + '/w.bin', dtype=np.float32)
gs = np.fromfile(d + '/g.bin', dtype=np.float32).reshape(steps, n)
for k, make in enumerate(sys.argv[4:]):
    p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = eval(make)
    for g in gs:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
    p.detach().numpy().tofile(d + '/out%d.bin' % k)
`;

test('Adam / AdamW float32 steps equal PyTorch\'s bit for bit (native and TypeScript kernels)', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ldm-adam-'));
  try {
    const gen = new T.Generator(17);
    const w0 = Float32Array.from(T.contiguousData(T.randn([N], gen)) as Float32Array);
    const grads = Array.from({ length: STEPS }, (_, s) => Float32Array.from(T.contiguousData(T.mul(T.randn([N], gen), 10 ** (s - 3))) as Float32Array));
    writeFileSync(path.join(dir, 'w.bin'), w0);
    writeFileSync(path.join(dir, 'g.bin'), Buffer.concat(grads.map((g) => Buffer.from(g.buffer))));
    const r = spawnSync(python, ['-c', SCRIPT, dir, String(N), String(STEPS), ...CASES.map((c) => c.torch)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `PyTorch side failed: ${r.stderr}`);
    const backends: [string, () => void][] = [['typescript', () => Object.assign(K, { adamUpdate: tsKernels.adamUpdate })]];
    if (nativeAvailable()) backends.unshift(['native', () => undefined]);
    const nativeAdam = K.adamUpdate;
    for (const [backend, use] of backends) {
      use();
      try {
        CASES.forEach((c, k) => {
          const p = new Parameter(T.tensor(w0.slice(), [N]));
          const opt = c.ours([p]);
          for (const g of grads) {
            p.grad = T.keep(T.tensor(g.slice(), [N]));
            opt.step();
          }
          const ours = new Int32Array(Float32Array.from(T.contiguousData(p) as Float32Array).buffer);
          const ref = new Int32Array(new Float32Array(readFileSync(path.join(dir, `out${k}.bin`)).buffer.slice(0)).buffer);
          let differ = 0, first = -1;
          for (let i = 0; i < N; i++) if (ours[i] !== ref[i]) differ++, first = first < 0 ? i : first;
          assert.equal(differ, 0, `${backend}, ${c.name}: ${differ} of ${N} weights differ from PyTorch's (first at ${first})`);
        });
      } finally {
        Object.assign(K, { adamUpdate: nativeAdam });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
