import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import { exportWeights } from '../../src/loader/export.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { floatToHalfBits } from '../../src/io/half.js';
import { halfToFloat } from '../../src/io/safetensors.js';

const roundHalf = (v: number) => halfToFloat(new Uint8Array(new Uint16Array([floatToHalfBits(v)]).buffer), false)[0];

test('export: EMA weights become the model weights, F16 for sub-module weights, buffers and ints stay exact', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ldm-export-'));
  const src = path.join(dir, 'in.safetensors');
  writeSafetensors(src, new Map<string, T.Tensor>([
    ['model.diffusion_model.out.0.weight', T.tensor([0.1, 0.2, 0.3])],
    ['model.diffusion_model.out.0.bias', T.tensor([1, 2])],
    ['model_ema.diffusion_modelout0weight', T.tensor([0.5, 0.25, 0.123456789])],
    ['model_ema.decay', T.tensor([0.9999])],
    ['first_stage_model.loss.logvar', T.tensor([0])],
    ['first_stage_model.decoder.conv_out.weight', T.tensor([3.14159])],
    ['alphas_cumprod', T.tensor([0.99985, 0.0047])],
    ['cond_stage_model.position_ids', T.tensor([0, 1, 2], [3], 'int64')],
  ]), { global_step: '800' });
  const out = path.join(dir, 'out.safetensors');
  const r = exportWeights(src, out, { ema: true, half: true });
  assert.equal(r.emaSwapped, 1);
  const f = readSafetensors(out);
  assert.deepEqual([...f.tensors.keys()], ['model.diffusion_model.out.0.weight', 'model.diffusion_model.out.0.bias', 'first_stage_model.decoder.conv_out.weight', 'alphas_cumprod', 'cond_stage_model.position_ids']);
  assert.deepEqual(f.tensors.get('model.diffusion_model.out.0.weight')!.toArray(), [0.5, 0.25, roundHalf(0.123456789)]);
  assert.notEqual(roundHalf(0.123456789), Math.fround(0.123456789));
  assert.deepEqual(f.tensors.get('model.diffusion_model.out.0.bias')!.toArray(), [1, 2]); // no shadow: kept
  assert.deepEqual(f.tensors.get('first_stage_model.decoder.conv_out.weight')!.toArray(), [roundHalf(3.14159)]);
  assert.deepEqual(f.tensors.get('alphas_cumprod')!.toArray(), [Math.fround(0.99985), Math.fround(0.0047)]); // exact float32
  assert.equal(f.tensors.get('cond_stage_model.position_ids')!.dtype, 'int64');
  assert.equal(f.metadata?.global_step, '800');
  assert.ok(r.bytes < 1000);
  // No EMA in the file: a clear error.
  const plain = path.join(dir, 'plain.safetensors');
  writeSafetensors(plain, new Map([['model.diffusion_model.w', T.tensor([1])]]));
  assert.throws(() => exportWeights(plain, path.join(dir, 'x.safetensors'), { ema: true }), /no model_ema\.\* weights/);
});
