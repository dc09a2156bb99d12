// The one table of samplers: every name the CLI, the server and the library accept, with what it is and the
// settings it reads. Each sampler lives in its own file (one SamplerSpec each); to add one, add its row here.

import { ddim } from './ddim.js';
import { ddpm } from './ddpm.js';
import { dpmSolverPP } from './dpm-solver-pp.js';
import { dpmpp2m, dpmpp2mKarras } from './k-dpmpp-2m.js';
import { dpmppSde } from './k-dpmpp-sde.js';
import { eulerAncestral } from './k-euler-ancestral.js';
import { euler } from './k-euler.js';
import { heun } from './k-heun.js';
import { plms } from './plms.js';
import type { SamplerSettings, SamplerSpec } from './types.js';

export const SAMPLER_TABLE: readonly SamplerSpec[] = [ddim, plms, dpmSolverPP, ddpm, euler, eulerAncestral, heun, dpmpp2m, dpmpp2mKarras, dpmppSde];

export type SamplerName = 'ddim' | 'plms' | 'dpm++' | 'ddpm' | 'euler' | 'euler-a' | 'heun' | 'dpm++2m' | 'dpm++2m-karras' | 'dpm++sde';

/** The sampler names, in table order. */
export const SAMPLERS: readonly SamplerName[] = SAMPLER_TABLE.map((s) => s.name as SamplerName);

export function isSamplerName(name: string): name is SamplerName {
  return (SAMPLERS as readonly string[]).includes(name);
}

/** The table row of a sampler; an unknown name is an error listing the known ones. */
export function samplerSpec(name: string): SamplerSpec {
  const s = SAMPLER_TABLE.find((x) => x.name === name);
  if (!s) throw new RangeError(`unknown sampler "${name}" (one of ${SAMPLERS.join(', ')})`);
  return s;
}

/** Whether a run with these settings draws noise beyond x_T. */
export function isStochastic(spec: SamplerSpec, settings: SamplerSettings): boolean {
  return typeof spec.stochastic === 'function' ? spec.stochastic(settings) : spec.stochastic;
}

export { SIGMA_SCHEDULES, type SigmaSchedule } from './k-schedule.js';
export type { DiffusionSchedule, EpsFn, RunOptions, SampleResult, Sampler, SamplerOption, SamplerSettings, SamplerSpec, StepCallback, StepInfo } from './types.js';
