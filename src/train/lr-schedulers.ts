// Learning-rate multipliers of the reference (ldm/lr_scheduler.py), in float64 like the Python floats they are,
// and torch's LambdaLR that applies one to an optimizer (lr = base_lr · schedule(step), stepped once per
// optimizer step: the configs' `interval: step`).
//
//   LambdaWarmUpCosineScheduler(warm_up_steps, lr_min, lr_max, lr_start, max_decay_steps):
//     n < warm: (lr_max − lr_start)/warm · n + lr_start
//     else:     t = min((n − warm)/(max_decay − warm), 1); lr_min + ½(lr_max − lr_min)(1 + cos(πt))
//   LambdaWarmUpCosineScheduler2(warm_up_steps[], f_min[], f_max[], f_start[], cycle_lengths[]): the same per
//     cycle (cycle k covers steps up to cum_cycles[k+1], inclusive; n counts from the cycle's start)
//   LambdaLinearScheduler(...same lists): warm-up as above, then f_min + (f_max − f_min)(L − n)/L
// `verbosity_interval` only prints in the reference; it is accepted and has no effect here.

import { ConfigError, Params, type ConfigNode } from '../io/config.js';
import type { Optimizer } from '../nn/optim.js';

export interface LrSchedule {
  /** The multiplier of the base learning rate at optimizer step n (0-based). */
  schedule(n: number): number;
  /** The last step the schedule is defined for (the cyclic ones stop after their last cycle). */
  readonly lastStep: number;
}

function checkStep(n: number, who: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${who}: step must be a non-negative integer, got ${n}`);
}

export class LambdaWarmUpCosineScheduler implements LrSchedule {
  readonly lastStep = Infinity;
  constructor(readonly warmUpSteps: number, readonly lrMin: number, readonly lrMax: number, readonly lrStart: number, readonly maxDecaySteps: number) {
    if (!(maxDecaySteps > warmUpSteps)) throw new RangeError(`LambdaWarmUpCosineScheduler: max_decay_steps (${maxDecaySteps}) must exceed warm_up_steps (${warmUpSteps})`);
  }
  schedule(n: number): number {
    checkStep(n, 'LambdaWarmUpCosineScheduler');
    if (n < this.warmUpSteps) return ((this.lrMax - this.lrStart) / this.warmUpSteps) * n + this.lrStart;
    const t = Math.min((n - this.warmUpSteps) / (this.maxDecaySteps - this.warmUpSteps), 1.0);
    return this.lrMin + 0.5 * (this.lrMax - this.lrMin) * (1 + Math.cos(t * Math.PI));
  }
}

export interface CycleLists {
  warmUpSteps: number[];
  fMin: number[];
  fMax: number[];
  fStart: number[];
  cycleLengths: number[];
}

abstract class CyclicScheduler implements LrSchedule {
  readonly cumCycles: number[];
  constructor(readonly c: CycleLists, who: string) {
    const n = c.warmUpSteps.length;
    if (n === 0) throw new RangeError(`${who}: at least one cycle is needed`);
    for (const [k, l] of Object.entries(c)) if (l.length !== n) throw new RangeError(`${who}: every list must have ${n} entries (warm_up_steps has ${n}, ${k} ${l.length})`);
    this.cumCycles = [0];
    for (const l of c.cycleLengths) this.cumCycles.push(this.cumCycles.at(-1)! + l);
  }
  get lastStep(): number {
    return this.cumCycles.at(-1)!;
  }
  /** find_in_interval: the first cycle whose cumulative end is ≥ n. */
  protected cycleOf(n: number, who: string): number {
    checkStep(n, who);
    for (let k = 1; k < this.cumCycles.length; k++) if (n <= this.cumCycles[k]) return k - 1;
    throw new RangeError(`${who}: step ${n} is past the last cycle (the cycles cover steps 0..${this.lastStep}; the reference fails there too)`);
  }
  protected warm(cycle: number, n: number): number | null {
    const w = this.c.warmUpSteps[cycle];
    return n < w ? ((this.c.fMax[cycle] - this.c.fStart[cycle]) / w) * n + this.c.fStart[cycle] : null;
  }
  abstract schedule(n: number): number;
}

export class LambdaWarmUpCosineScheduler2 extends CyclicScheduler {
  constructor(c: CycleLists) {
    super(c, 'LambdaWarmUpCosineScheduler2');
  }
  schedule(step: number): number {
    const cycle = this.cycleOf(step, 'LambdaWarmUpCosineScheduler2');
    const n = step - this.cumCycles[cycle];
    const w = this.warm(cycle, n);
    if (w !== null) return w;
    const { warmUpSteps, cycleLengths, fMin, fMax } = this.c;
    const t = Math.min((n - warmUpSteps[cycle]) / (cycleLengths[cycle] - warmUpSteps[cycle]), 1.0);
    return fMin[cycle] + 0.5 * (fMax[cycle] - fMin[cycle]) * (1 + Math.cos(t * Math.PI));
  }
}

export class LambdaLinearScheduler extends CyclicScheduler {
  constructor(c: CycleLists) {
    super(c, 'LambdaLinearScheduler');
  }
  schedule(step: number): number {
    const cycle = this.cycleOf(step, 'LambdaLinearScheduler');
    const n = step - this.cumCycles[cycle];
    const w = this.warm(cycle, n);
    if (w !== null) return w;
    const { cycleLengths: L, fMin, fMax } = this.c;
    return fMin[cycle] + ((fMax[cycle] - fMin[cycle]) * (L[cycle] - n)) / L[cycle];
  }
}

const TARGETS = ['ldm.lr_scheduler.LambdaWarmUpCosineScheduler', 'ldm.lr_scheduler.LambdaWarmUpCosineScheduler2', 'ldm.lr_scheduler.LambdaLinearScheduler'];

/** Build the scheduler of a config's `scheduler_config` node ({target, params}); `path` names it in errors. */
export function buildLrScheduler(node: ConfigNode | unknown, path = 'scheduler_config'): LrSchedule {
  if (!node || typeof node !== 'object' || Array.isArray(node) || typeof (node as { target?: unknown }).target !== 'string') {
    throw new ConfigError(`${path}: expected a {target, params} mapping, got ${JSON.stringify(node)}`);
  }
  const { target, params, ...rest } = node as { target: string; params?: Record<string, unknown> | null };
  const extra = Object.keys(rest);
  if (extra.length) throw new ConfigError(`${path}.${extra[0]}: unknown key beside target/params`);
  const name = target.split('.').at(-1)!;
  if (!TARGETS.includes(target) && !TARGETS.some((t) => t.endsWith(`.${target}`))) {
    throw new ConfigError(`${path}.target: unknown learning-rate scheduler ${target} (known: ${TARGETS.join(', ')})`);
  }
  const p = new Params(params ?? {}, `${path}.params`, target);
  p.ignore('verbosity_interval');
  let s: LrSchedule;
  try {
    if (name === 'LambdaWarmUpCosineScheduler') {
      s = new LambdaWarmUpCosineScheduler(p.number('warm_up_steps'), p.number('lr_min'), p.number('lr_max'), p.number('lr_start'), p.number('max_decay_steps'));
    } else {
      const lists: CycleLists = { warmUpSteps: p.numbers('warm_up_steps'), fMin: p.numbers('f_min'), fMax: p.numbers('f_max'), fStart: p.numbers('f_start'), cycleLengths: p.numbers('cycle_lengths') };
      s = name === 'LambdaLinearScheduler' ? new LambdaLinearScheduler(lists) : new LambdaWarmUpCosineScheduler2(lists);
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${path}.params: ${(e as Error).message}`);
  }
  p.assertAllUsed();
  return s;
}

/**
 * torch.optim.lr_scheduler.LambdaLR over every parameter group: created at step 0 (it sets lr = base · f(0)
 * at once, as torch's constructor does), then `step()` after each optimizer step sets lr = base · f(step).
 */
export class LambdaLR {
  readonly baseLrs: number[];
  lastStep = 0;
  constructor(readonly optimizer: Optimizer<Record<string, number | boolean>>, readonly schedule: LrSchedule) {
    this.baseLrs = optimizer.groups.map((g) => g.options.lr as number);
    this.apply();
  }
  private apply(): void {
    const f = this.schedule.schedule(this.lastStep);
    this.optimizer.groups.forEach((g, i) => ((g.options as Record<string, number>).lr = this.baseLrs[i] * f));
  }
  step(): void {
    this.lastStep++;
    this.apply();
  }
  /** The lr of the first group now. */
  get lr(): number {
    return this.optimizer.groups[0].options.lr as number;
  }
  stateDict(): { last_step: number; base_lrs: number[] } {
    return { last_step: this.lastStep, base_lrs: [...this.baseLrs] };
  }
  loadStateDict(s: { last_step: number; base_lrs: number[] }, source = 'scheduler state'): void {
    if (!Number.isInteger(s.last_step) || s.last_step < 0) throw new Error(`LambdaLR.loadStateDict(${source}): last_step must be a non-negative integer, got ${s.last_step}`);
    if (!Array.isArray(s.base_lrs) || s.base_lrs.length !== this.baseLrs.length) throw new Error(`LambdaLR.loadStateDict(${source}): ${s.base_lrs?.length} base lr(s) saved, optimizer has ${this.baseLrs.length} group(s)`);
    this.baseLrs.splice(0, this.baseLrs.length, ...s.base_lrs);
    this.lastStep = s.last_step;
    this.apply();
  }
}
