// Kind ldm_train_step: LatentDiffusion.p_losses for the given latent x0, timesteps t and noise (the
// conditioning encoded with gradients when cond_stage_trainable), backward, one optimizer step over
// configure_optimizers' parameters (UNet, the trainable conditioning encoder, a learned logvar), with the
// trainer's functions; compares the loss, the log dict (log.* where the folder records it), lvlb_weights,
// the gradients and the updated values of the watched parameters.

import * as T from '../../engine/index.js';
import { LatentDiffusion } from '../../diffusion/latent-diffusion.js';
import { createLdmOptimizer, ldmConditioning, ldmLossStep, prepareLdmTraining } from '../../train/ldm-step.js';
import { buildCaseModel, ioTensor, likeExpected, loadCaseWeights } from '../helpers.js';
import type { GoldenKind, GoldenOutput } from '../types.js';
import { caseConditioning } from './ldm_sample.js';

interface TrainSpec {
  optimizer: { name: string; lr: number; betas: [number, number]; eps: number; weight_decay: number };
  cond?: unknown;
  watched: string[];
  logs?: string[];
  diffusion?: { parameterization: string; loss_type: string; learn_logvar: boolean; original_elbo_weight: number; conditioning_key: string | null };
}

export const ldmTrainStep: GoldenKind = {
  describe: 'LatentDiffusion.p_losses → backward → AdamW step: loss, log dict, lvlb_weights, gradients and updated watched parameters',
  run: (c) => {
    const m = buildCaseModel(c, LatentDiffusion);
    loadCaseWeights(c, m);
    const spec = c.spec as unknown as TrainSpec;
    const o = spec.optimizer;
    if (o.name !== 'AdamW') throw new Error(`${c.dir}: optimizer ${o.name} (LatentDiffusion.configure_optimizers builds AdamW)`);
    const d = spec.diffusion;
    if (d && (d.parameterization !== m.config.parameterization || d.loss_type !== m.config.loss_type || d.learn_logvar !== m.config.learn_logvar || d.original_elbo_weight !== m.config.original_elbo_weight)) {
      throw new Error(`${c.dir}: case.json diffusion ${JSON.stringify(d)} disagrees with what config.yaml built`);
    }
    prepareLdmTraining(m);
    const cond = caseConditioning(c, m, spec.cond) ?? ldmConditioning(m, null);
    const { loss, log } = ldmLossStep(m, ioTensor(c, 'x0'), cond, { t: ioTensor(c, 't'), noise: ioTensor(c, 'noise') });
    loss.backward();
    const named = new Map<string, T.Tensor>(m.namedParameters());
    const out: GoldenOutput[] = [{ name: 'loss', actual: likeExpected(c, 'loss', loss) }];
    for (const name of spec.logs ?? []) {
      const key = name.replace(/^log\./, '');
      const v = log[key === 'logvar' ? 'logvar' : `train/${key}`];
      if (v === undefined) throw new Error(`${c.dir}: p_losses logged no ${key} (it logged ${Object.keys(log).join(', ')})`);
      out.push({ name, actual: T.tensor([v], [1]) });
    }
    if (c.io.has('lvlb_weights')) out.push({ name: 'lvlb_weights', actual: T.mulScalar(m.lvlb_weights, 1) });
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
    createLdmOptimizer(m, o.lr, { betas: o.betas, weightDecay: o.weight_decay }).step();
    for (const k of spec.watched) out.push({ name: `after_step.${k}`, actual: T.mulScalar(get(k), 1) });
    return out;
  },
};
