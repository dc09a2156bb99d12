// A model checked before it loads: `planModel` resolves the files a model argument names, builds the
// model from its config without weights (shape-only, milliseconds even for Stable Diffusion) and compares
// the checkpoint's keys and shapes with it from the file's header alone. A front end checks its inputs
// against this shape-only model, then loads the weights (loadModel) only when everything fits.

import path from 'node:path';
import { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { readCheckpoint } from '../io/ckpt.js';
import { formatLoadReport } from '../nn/index.js';
import { loadCheckpointInto, type CheckpointLoadReport } from './checkpoint.js';
import type { ModelInfo } from './embedded.js';
import { hasEmaWeights, modelSource, ModelFilesError, notLatentDiffusion, type LoadModelOptions, type ModelFiles } from './model.js';
import { buildFromConfigFile } from './targets.js';

export interface ModelPlan {
  /** The model as the config builds it, without weights (forward throws). */
  model: LatentDiffusion;
  files: ModelFiles;
  /** Whether the EMA weights would be loaded. */
  useEma: boolean;
  report: CheckpointLoadReport;
  info?: ModelInfo;
  name?: string;
}

/** Config fields that set one dimension of a weight, by the weight's key (LatentDiffusion checkpoints). */
const SHAPE_FIELDS: { key: RegExp; dims: Record<number, string> }[] = [
  { key: /^model\.diffusion_model\.input_blocks\.0\.0\.weight$/, dims: { 0: 'unet_config.params.model_channels', 1: 'unet_config.params.in_channels' } },
  { key: /^model\.diffusion_model\.out\.2\.weight$/, dims: { 0: 'unet_config.params.out_channels' } },
  { key: /^model\.diffusion_model\..*\.attn2\.to_[kv]\.weight$/, dims: { 1: 'unet_config.params.context_dim' } },
  { key: /^model\.diffusion_model\.label_emb\.weight$/, dims: { 0: 'unet_config.params.num_classes' } },
  { key: /^cond_stage_model\.embedding\.weight$/, dims: { 0: 'cond_stage_config.params.n_classes', 1: 'cond_stage_config.params.embed_dim' } },
  { key: /^cond_stage_model\.transformer\.token_emb\.weight$/, dims: { 0: 'cond_stage_config.params.vocab_size', 1: 'cond_stage_config.params.n_embed' } },
  { key: /^first_stage_model\.encoder\.conv_in\.weight$/, dims: { 0: 'first_stage_config.params.ddconfig.ch', 1: 'first_stage_config.params.ddconfig.in_channels' } },
  { key: /^first_stage_model\.decoder\.conv_out\.weight$/, dims: { 0: 'first_stage_config.params.ddconfig.out_ch' } },
  { key: /^first_stage_model\.post_quant_conv\.weight$/, dims: { 0: 'first_stage_config.params.ddconfig.z_channels', 1: 'first_stage_config.params.embed_dim' } },
  { key: /^first_stage_model\.quantize\.embedding\.weight$/, dims: { 0: 'first_stage_config.params.n_embed', 1: 'first_stage_config.params.embed_dim' } },
];

const SUB_CONFIGS: [string, string][] = [['model.diffusion_model.', 'unet_config'], ['first_stage_model.', 'first_stage_config'], ['cond_stage_model.', 'cond_stage_config']];

/** Which config field to change for each shape mismatch, where one field sets the differing dimension. */
export function shapeHints(mismatched: CheckpointLoadReport['mismatched'], params = 'model.params'): string[] {
  const hints = new Map<string, string>();
  for (const m of mismatched) {
    const row = SHAPE_FIELDS.find((r) => r.key.test(m.key));
    if (!row || m.expected.length !== m.got.length) continue;
    for (const [d, field] of Object.entries(row.dims)) {
      const i = Number(d);
      if (m.expected[i] !== m.got[i] && !hints.has(field)) hints.set(field, `${params}.${field} is ${m.expected[i]} in the config, ${m.got[i]} in the file (${m.key} dimension ${i})`);
    }
  }
  if (!hints.size && mismatched.length) {
    const sub = SUB_CONFIGS.find(([p]) => mismatched[0].key.startsWith(p));
    if (sub) hints.set(sub[1], `the shapes come from ${params}.${sub[1]}: it does not describe the network this file holds`);
  }
  return [...hints.values()].slice(0, 4);
}

/**
 * Resolve, build shape-only and check the checkpoint's keys and shapes against the config, reading only
 * the file's header (no weights). Mismatches are a ModelFilesError naming the keys, both shapes and the
 * config field to change.
 */
export function planModel(source?: string, opts: LoadModelOptions = {}): ModelPlan {
  const { files, info, name } = modelSource(source, opts.config);
  const model = buildFromConfigFile<LatentDiffusion>(files.config, { ...(opts.build ?? {}), meta: true });
  if (!(model instanceof LatentDiffusion)) throw notLatentDiffusion(files.config);
  const ck = readCheckpoint(files.ckpt);
  try {
    const hasEma = hasEmaWeights(ck.stateDict.keys());
    const ema = opts.ema ?? 'auto';
    if (ema === true && !hasEma) throw new ModelFilesError('ckpt', `${files.ckpt} has no EMA weights (model_ema.*)`);
    const useEma = ema === 'auto' ? model.config.use_ema && hasEma : ema;
    const report = loadCheckpointInto(model, ck, { ema: useEma, strict: false, dryRun: true });
    if (report.missing.length + report.unexpected.length + report.mismatched.length) {
      const hints = shapeHints(report.mismatched);
      throw new ModelFilesError('ckpt', `${formatLoadReport(report, path.basename(files.ckpt))}\n  with the config ${files.config}` +
        (hints.length ? `; change the config (or use the file made for it):\n${hints.map((h) => `    ${h}`).join('\n')}` : ''));
    }
    return { model, files, useEma, report, info, name };
  } finally {
    ck.close();
  }
}
