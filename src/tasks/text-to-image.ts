// Text-to-image (scripts/txt2img.py): the prompt through BERTEmbedder (WordPiece, 77 tokens) as the
// cross-attention context; with guidance the unconditional context is the embedding of "" per sample.
// The tokenizer needs the bert-base-uncased vocab.txt (not shipped with checkpoints).

import { BERTEmbedder } from '../models/encoders/index.js';
import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageSize, latentShape, requireTask, runSampling, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError, TaskInputError } from './errors.js';

export interface TextOptions extends SamplingSettings {
  /** One prompt per sample. */
  prompts: string[];
  /** bert-base-uncased vocab.txt, if the model has no tokenizer yet. */
  vocabFile?: string;
  H?: number;
  W?: number;
}

export function textConditioning(model: LatentDiffusion, prompts: string[], scale: number, vocabFile?: string): { cond: Conditioning; uncond?: Conditioning } {
  const cs = model.cond_stage_model;
  if (!(cs instanceof BERTEmbedder)) throw new TaskError('this model has no BERT text encoder');
  if (vocabFile) cs.setTokenizer(vocabFile);
  if (!cs.tokenizer) throw new TaskInputError('vocab', 'text prompts need the bert-base-uncased vocab.txt (one token per line)');
  const cond = model.getLearnedConditioning(prompts);
  return scale === 1 ? { cond } : { cond, uncond: model.getLearnedConditioning(prompts.map(() => '')) };
}

export function sampleTextToImage(model: LatentDiffusion, o: TextOptions): TaskResult {
  requireTask(model, 'text');
  if (o.prompts.length === 0) throw new TaskInputError('prompt', 'this is a text-to-image model: give a prompt');
  const shape = latentShape(model, o.prompts.length, ...imageSize(model, o));
  const scale = o.scale ?? 1;
  const { cond, uncond } = T.noGrad(() => textConditioning(model, o.prompts, scale, o.vocabFile));
  const distinct = [...new Set(o.prompts)];
  return runSampling(model, o, cond, uncond, shape, {}, {
    task: 'text', prompt: distinct.length === 1 ? distinct[0] : o.prompts, width: shape[3] * model.firstStageFactor, height: shape[2] * model.firstStageFactor,
  });
}
