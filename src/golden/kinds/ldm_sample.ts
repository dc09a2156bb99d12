// Kind ldm_sample: a whole LatentDiffusion — DDIM or PLMS from the given x_T with classifier-free
// guidance (conditioning and unconditional conditioning from case.json, tensors from io.safetensors),
// decoded by the first stage; with use_ema, the same again with the EMA weights (model_ema.*).

import * as T from '../../engine/index.js';
import { LatentDiffusion } from '../../diffusion/latent-diffusion.js';
import { sampleLatents } from '../../diffusion/sample-latents.js';
import type { SamplerName } from '../../diffusion/samplers/index.js';
import { ClassEmbedder } from '../../models/encoders/index.js';
import { buildCaseModel, ioTensor, loadCaseWeights } from '../helpers.js';
import type { GoldenCase, GoldenKind, GoldenOutput } from '../types.js';

/** Sampler tolerance of the fixtures' README (10-step sampler, float32). */
const SAMPLER_TOL = 1e-3;

/** case.json conditioning spec ({key: "io:name" | value}) → what get_learned_conditioning takes. */
export function caseConditioning(c: GoldenCase, m: LatentDiffusion, spec: unknown): T.Tensor | null {
  if (spec === undefined || spec === null) return null;
  const batch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec as Record<string, unknown>)) {
    batch[k] = typeof v === 'string' && v.startsWith('io:') ? ioTensor(c, v.slice(3)) : v;
  }
  const key = m.config.cond_stage_key;
  const input = m.cond_stage_model instanceof ClassEmbedder ? batch : key in batch ? batch[key] : batch;
  return m.getLearnedConditioning(input);
}

export const ldmSample: GoldenKind = {
  describe: 'LatentDiffusion: DDIM/PLMS from x_T with classifier-free guidance, decode; live and EMA weights',
  run: (c) =>
    T.noGrad(() => {
      const m = buildCaseModel(c, LatentDiffusion);
      m.eval();
      const spec = c.spec as { sampler: SamplerName; steps: number; eta?: number; guidance_scale?: number; cond?: unknown; uncond?: unknown };
      const run = () => {
        const cond = caseConditioning(c, m, spec.cond);
        const scale = spec.guidance_scale ?? 1;
        const uncond = scale !== 1 ? caseConditioning(c, m, spec.uncond) ?? undefined : undefined;
        return sampleLatents(m, { sampler: spec.sampler, steps: spec.steps, eta: spec.eta ?? 0, scale, cond, uncond, xT: ioTensor(c, 'x_T') }).x;
      };
      loadCaseWeights(c, m);
      const samples = run();
      const out: GoldenOutput[] = [
        { name: 'samples', actual: samples, tol: SAMPLER_TOL },
        { name: 'images', actual: m.decodeFirstStage(samples), tol: SAMPLER_TOL },
      ];
      if (c.io.has('samples_ema')) {
        loadCaseWeights(c, m, { ema: true });
        out.push({ name: 'samples_ema', actual: run(), tol: SAMPLER_TOL });
      }
      return out;
    }),
};
