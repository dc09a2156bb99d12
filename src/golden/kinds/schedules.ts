// Kind schedules: beta schedules and ᾱ for each schedule of config.yaml, the DDIM timesteps / alphas /
// alphas_prev / sigmas of every case.json `ddim` entry, and timestep_embedding for the listed dims.

import * as T from '../../engine/index.js';
import { readYaml } from '../../io/config.js';
import { ddimSchedule, ddimTimesteps, registerSchedule, type BetaSchedule, type DDIMDiscretize } from '../../diffusion/schedules.js';
import { timestepEmbedding } from '../../models/unet/timestep.js';
import { ioTensor } from '../helpers.js';
import type { GoldenKind, GoldenOutput } from '../types.js';

interface ScheduleCfg {
  beta_schedule?: BetaSchedule;
  linear_start?: number;
  linear_end?: number;
  timesteps?: number;
  cosine_s?: number;
}

export const schedules: GoldenKind = {
  describe: 'beta schedules (linear in sqrt space, cosine, …), ᾱ, DDIM timesteps/alphas/alphas_prev/sigmas, timestep_embedding',
  run: (c) => {
    if (!c.configPath) throw new Error(`${c.dir}: the schedules kind needs config.yaml (one entry per schedule)`);
    const doc = readYaml(c.configPath);
    const cfg = (doc.schedules ?? doc) as Record<string, ScheduleCfg>;
    const out: GoldenOutput[] = [];
    const acs: Record<string, Float32Array> = {};
    for (const [name, s] of Object.entries(cfg)) {
      const b = registerSchedule({ beta_schedule: s.beta_schedule, linear_start: s.linear_start, linear_end: s.linear_end, timesteps: s.timesteps, cosine_s: s.cosine_s });
      acs[name] = b.alphas_cumprod;
      out.push({ name: `${name}.betas`, actual: T.tensor(b.betas) }, { name: `${name}.alphas_cumprod`, actual: T.tensor(b.alphas_cumprod) });
    }
    const ddim = (c.spec.ddim ?? []) as { schedule: string; steps: number; eta: number; discretize: DDIMDiscretize; prefix: string }[];
    for (const d of ddim) {
      const ac = acs[d.schedule];
      if (!ac) throw new Error(`${c.dir}: ddim entry ${d.prefix} names schedule ${d.schedule}, not in config.yaml`);
      const ts = ddimTimesteps(d.discretize, d.steps, ac.length);
      const s = ddimSchedule(ac, ts, d.eta);
      out.push(
        { name: `${d.prefix}.timesteps`, actual: T.tensor(ts, [ts.length], 'int64'), exact: true },
        { name: `${d.prefix}.alphas`, actual: T.tensor(s.alphas) },
        { name: `${d.prefix}.alphas_prev`, actual: T.tensor(s.alphas_prev) },
        { name: `${d.prefix}.sigmas`, actual: T.tensor(s.sigmas) },
      );
    }
    const dims = (c.spec.timestep_embedding_dims ?? []) as number[];
    for (const dim of dims) {
      out.push({ name: `timestep_embedding.dim${dim}`, actual: timestepEmbedding(ioTensor(c, 'timestep_embedding.t'), dim) });
    }
    return out;
  },
};
