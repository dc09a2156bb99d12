// Kind lr_schedule: the reference's learning-rate multipliers (float64) at the steps in io.safetensors, for
// each case.json scheduler, and where given the lr LambdaLR hands the optimizer before steps 0..N.

import * as T from '../../engine/index.js';
import { Adam } from '../../nn/optim.js';
import { buildLrScheduler, LambdaLR } from '../../train/lr-schedulers.js';
import { ioTensor } from '../helpers.js';
import type { GoldenKind, GoldenOutput } from '../types.js';

interface LrCase {
  prefix: string;
  target: string;
  params: Record<string, unknown>;
  lambdalr_base_lr?: number;
}

export const lrSchedule: GoldenKind = {
  describe: 'LambdaWarmUpCosineScheduler(2) / LambdaLinearScheduler multipliers and the LambdaLR lr sequence',
  run: (c) => {
    const out: GoldenOutput[] = [];
    for (const cs of (c.spec as { cases: LrCase[] }).cases) {
      const sched = buildLrScheduler({ target: cs.target, params: cs.params }, `${c.name}/case.json ${cs.prefix}`);
      const steps = ioTensor(c, `${cs.prefix}steps`).toArray();
      out.push({ name: `${cs.prefix}multiplier`, actual: T.tensor(Float64Array.from(steps, (n) => sched.schedule(n))), tol: 1e-12 });
      if (cs.lambdalr_base_lr !== undefined) {
        const n = ioTensor(c, `${cs.prefix}lambdalr_lr`).size;
        const p = T.keep(T.zeros([1]));
        const opt = new Adam([p], { lr: cs.lambdalr_base_lr });
        const lambda = new LambdaLR(opt, sched);
        const lrs = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          lrs[i] = opt.lr;
          if (i < n - 1) lambda.step(); // scheduler.step() after each optimizer step (none after the last read)
        }
        out.push({ name: `${cs.prefix}lambdalr_lr`, actual: T.tensor(lrs), tol: 1e-12 });
      }
    }
    return out;
  },
};
