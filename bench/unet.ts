// UNet forward bench case: the denoising UNet of celebahq-ldm-vq-4 / ffhq-ldm-vq-4 (274 M parameters,
// 64×64×3 latents, batch 1, one sampling step) against its PyTorch twin in bench/torch_bench.py.
//
// `npm run bench -- --check-unet` first checks that the twin is the same network: a smaller model of the
// same structure (model_channels 64, every weight random, including the zero-initialised ones) is saved
// with an input and our output, the twin loads them, and the relative L2 error of its output is printed.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/engine/index.js';
import { K } from '../src/engine/kernels/index.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { unetFromParams } from '../src/models/unet/index.js';
import type { BenchCase } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));

export const UNET_CONFIG = {
  in_channels: 3, out_channels: 3, model_channels: 224, attention_resolutions: [8, 4, 2], num_res_blocks: 2,
  channel_mult: [1, 2, 3, 4], num_head_channels: 32,
};

/** Floating-point work of fn, counted from the GEMM, convolution and attention kernels it calls. */
function countFlops(fn: () => void): number {
  const saved = { gemm: K.gemm, conv: K.conv2dForward, attn: K.attentionForward };
  let flops = 0;
  K.gemm = (g) => {
    flops += 2 * g.M * g.N * g.K * g.batch;
    saved.gemm(g);
  };
  K.conv2dForward = (x, N, C, H, W, w, O, kh, kw, b, sh, sw, pt, pl, OH, OW, out) => {
    flops += 2 * N * O * C * kh * kw * OH * OW;
    saved.conv(x, N, C, H, W, w, O, kh, kw, b, sh, sw, pt, pl, OH, OW, out);
  };
  K.attentionForward = (q, k, v, B, Lq, Lk, D, Dv, scale, out, lse) => {
    flops += 2 * B * Lq * Lk * (D + Dv);
    saved.attn(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse);
  };
  try {
    fn();
  } finally {
    K.gemm = saved.gemm;
    K.conv2dForward = saved.conv;
    K.attentionForward = saved.attn;
  }
  return flops;
}

function checkTwin(python: string): void {
  const cfg = { ...UNET_CONFIG, model_channels: 64 };
  const model = unetFromParams({ image_size: 32, ...cfg }).eval();
  const gen = new T.Generator(7);
  for (const p of model.parameters()) {
    const r = T.randn(p.shape, gen);
    (p.data as Float32Array).set(T.mulScalar(r, 1 / Math.sqrt(Math.max(1, p.size / p.shape[0]))).data as Float32Array);
  }
  const x = T.randn([1, 3, 32, 32], gen), t = T.tensor([321], [1]);
  const y = T.noGrad(() => model.forward(x, t));
  const dir = mkdtempSync(join(tmpdir(), 'ldm-unet-check-'));
  try {
    writeSafetensors(join(dir, 'weights.safetensors'), model.stateDict());
    writeSafetensors(join(dir, 'io.safetensors'), { x, t, y });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const r = spawnSync(python, [join(here, 'torch_bench.py'), 'unet_check', dir], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0) throw new Error(`unet twin check failed: ${r.stderr.trim().split('\n').pop()}`);
    const res = JSON.parse(line) as { missing: string[]; unexpected: string[]; rel_l2: number };
    console.log(`UNet twin check (model_channels 64, random weights): rel. L2 difference ${res.rel_l2.toExponential(2)}; ` +
      `keys missing in torch: ${res.missing.length}, unexpected: ${res.unexpected.length}`);
    if (res.missing.length || res.unexpected.length || !(res.rel_l2 < 1e-4)) throw new Error(`the torch twin is not the same network: ${line}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The UNet case (null unless selected with --only unet_fwd or running every case). */
export async function unetCase(_gen: T.Generator): Promise<BenchCase | null> {
  const i = process.argv.indexOf('--only');
  const only = i >= 0 ? process.argv[i + 1].split(',') : null;
  const python = process.argv.includes('--python') ? process.argv[process.argv.indexOf('--python') + 1] : '/usr/bin/python3';
  if (process.argv.includes('--check-unet')) checkTwin(python);
  if (only && !only.includes('unet_fwd')) return null;
  const model = unetFromParams({ image_size: 64, ...UNET_CONFIG }).eval();
  const x = T.keep(T.randn([1, 3, 64, 64], new T.Generator(3))), t = T.keep(T.tensor([500], [1]));
  const run = () => {
    T.noGrad(() => T.tidy(() => {
      model.forward(x, t);
    }));
  };
  const flops = countFlops(run);
  return {
    name: 'unet_fwd',
    what: `UNet forward, celebahq-ldm-vq-4 config (${(model.numParameters() / 1e6).toFixed(0)} M params), 1×3×64×64`,
    flops,
    torch: ['unet_fwd'],
    setup: () => run,
  };
}
