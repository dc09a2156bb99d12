// Kind ldm_train_step: LatentDiffusion.p_losses for the given latent x0, timesteps t and noise (the
// conditioning encoded with gradients when cond_stage_trainable), backward, one AdamW step over the
// UNet (and the trainable conditioning encoder); compares the loss, the gradients and the updated
// values of the watched parameters.

import * as T from '../../engine/index.js';
import { LatentDiffusion } from '../../diffusion/latent-diffusion.js';
import { AdamW } from '../../nn/optim.js';
import type { Parameter } from '../../nn/index.js';
import { buildCaseModel, ioTensor, likeExpected, loadCaseWeights } from '../helpers.js';
import type { GoldenKind, GoldenOutput } from '../types.js';
import { caseConditioning } from './ldm_sample.js';

/** The parameters the reference optimizes: model.* (+ cond_stage_model.* when trainable, + logvar when learned). */
export function trainableParameters(m: LatentDiffusion): Parameter[] {
  const ps = [...m.model.parameters()];
  if (m.config.cond_stage_trainable && m.cond_stage_model) ps.push(...m.cond_stage_model.parameters());
  if (m.logvar) ps.push(m.logvar);
  return ps;
}

export const ldmTrainStep: GoldenKind = {
  describe: 'LatentDiffusion.p_losses → backward → AdamW step: loss, gradients and updated watched parameters',
  run: (c) => {
    const m = buildCaseModel(c, LatentDiffusion);
    loadCaseWeights(c, m);
    m.train();
    const spec = c.spec as { optimizer: { name: string; lr: number; betas: [number, number]; eps: number; weight_decay: number }; cond?: unknown; watched: string[] };
    if (spec.optimizer.name !== 'AdamW') throw new Error(`${c.dir}: optimizer ${spec.optimizer.name} (only AdamW)`);
    const params = trainableParameters(m);
    const trained = new Set<T.Tensor>(params);
    for (const p of m.parameters()) p.requiresGrad = trained.has(p);
    const cond = caseConditioning(c, m, spec.cond);
    const { loss } = m.pLosses(ioTensor(c, 'x0'), cond, ioTensor(c, 't'), ioTensor(c, 'noise'));
    loss.backward();
    const named = new Map<string, T.Tensor>(m.namedParameters());
    const out: GoldenOutput[] = [{ name: 'loss', actual: likeExpected(c, 'loss', loss) }];
    const get = (k: string) => {
      const p = named.get(k);
      if (!p) throw new Error(`${c.dir}: watched parameter ${k} is not a parameter of the model`);
      return p;
    };
    for (const k of spec.watched) {
      const g = get(k).grad;
      if (!g) throw new Error(`${c.dir}: ${k} got no gradient`);
      out.push({ name: `grad.${k}`, actual: T.mulScalar(g, 1) });
    }
    const o = spec.optimizer;
    new AdamW(params, { lr: o.lr, betas: o.betas, eps: o.eps, weight_decay: o.weight_decay }).step();
    for (const k of spec.watched) out.push({ name: `after_step.${k}`, actual: T.mulScalar(get(k), 1) });
    return out;
  },
};
