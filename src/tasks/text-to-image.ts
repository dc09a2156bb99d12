// Text-to-image (scripts/txt2img.py): the prompt through BERTEmbedder (WordPiece, 77 tokens) or SD v1's
// FrozenCLIPEmbedder (CLIP BPE) as the cross-attention context; with guidance the unconditional context is
// the embedding of "" per sample, or of a negative prompt. The tokenizer files are not shipped with
// checkpoints: bert-base-uncased's vocab.txt, or the folder of CLIP's vocab.json + merges.txt.

import { BERTEmbedder } from '../models/encoders/index.js';
import { FrozenCLIPEmbedder } from '../models/encoders/clip-text.js';
import * as T from '../engine/index.js';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { Conditioning } from '../diffusion/guidance.js';
import { imageSize, latentShape, requireTask, runSampling, type ParamValue, type SamplingSettings, type TaskResult } from './common.js';
import { TaskError, TaskInputError } from './errors.js';

export interface TextOptions extends SamplingSettings {
  /** One prompt per sample. */
  prompts: string[];
  /** bert-base-uncased vocab.txt (BERT models) or the CLIP tokenizer folder (SD), if the model has no tokenizer yet. */
  vocabFile?: string;
  /** The unconditional input of guidance instead of "": one for all prompts, or one per prompt. */
  negativePrompts?: string[];
  H?: number;
  W?: number;
}

/** Token ids of a text without start/end tokens, and how many the encoder reads between them. */
function tokenCounter(model: LatentDiffusion, vocabFile?: string): { count: (text: string) => number; max: number } {
  const cs = model.cond_stage_model;
  const named = (e: unknown) => {
    const m = (e as Error).message;
    return vocabFile && !m.includes(vocabFile) ? `${vocabFile}: ${m}` : m;
  };
  if (cs instanceof FrozenCLIPEmbedder) {
    try {
      if (vocabFile) cs.setTokenizer(vocabFile);
      const tok = cs.tokenizer;
      return { count: (t) => tok.tokenizeIds(t).length, max: tok.maxLength - 2 };
    } catch (e) {
      throw new TaskInputError('vocab', named(e));
    }
  }
  if (cs instanceof BERTEmbedder) {
    try {
      if (vocabFile) cs.setTokenizer(vocabFile);
    } catch (e) {
      throw new TaskInputError('vocab', named(e));
    }
    const tok = cs.tokenizer?.tokenizer;
    if (!tok) throw new TaskInputError('vocab', 'text prompts need the bert-base-uncased vocab.txt (one token per line)');
    return { count: (t) => tok.tokenizeIds(t).length, max: tok.maxLength - 2 };
  }
  throw new TaskError('this model has no text encoder (BERT or CLIP)');
}

/**
 * Check prompts and negative prompts against the model's text encoder: its tokenizer is set up (from
 * vocabFile) and every text must fit its context — the reference code would cut the rest off silently.
 * No model weights are read (a shape-only build does).
 */
export function checkPrompts(model: LatentDiffusion, prompts: readonly string[], scale: number, vocabFile?: string, negativePrompts?: readonly string[]): void {
  const neg = negativePrompts ?? [];
  if (neg.length > 1 && neg.length !== prompts.length) throw new TaskInputError('negativePrompt', `give one negative prompt, or one per prompt (${prompts.length}), not ${neg.length}`);
  if (neg.length && scale === 1) throw new TaskInputError('negativePrompt', 'a negative prompt acts through classifier-free guidance: give a scale other than 1');
  const { count, max } = tokenCounter(model, vocabFile);
  for (const [input, texts] of [['prompt', prompts], ['negativePrompt', neg]] as const) {
    for (const t of texts) {
      const k = count(t);
      if (k > max) {
        const shown = t.length > 40 ? `${t.slice(0, 37)}…` : t;
        throw new TaskInputError(input, `"${shown}" is ${k} tokens; this model's text encoder reads ${max} (${max + 2} with its start and end tokens): shorten it by ${k - max} token${k - max === 1 ? '' : 's'}`);
      }
    }
  }
}

export function textConditioning(model: LatentDiffusion, prompts: string[], scale: number, vocabFile?: string, negativePrompts?: string[]): { cond: Conditioning; uncond?: Conditioning } {
  checkPrompts(model, prompts, scale, vocabFile, negativePrompts);
  const neg = negativePrompts ?? [];
  const cond = model.getLearnedConditioning(prompts);
  return scale === 1 ? { cond } : { cond, uncond: model.getLearnedConditioning(prompts.map((_, i) => neg[neg.length > 1 ? i : 0] ?? '')) };
}

export function sampleTextToImage(model: LatentDiffusion, o: TextOptions): TaskResult {
  requireTask(model, 'text');
  if (o.prompts.length === 0) throw new TaskInputError('prompt', 'this is a text-to-image model: give a prompt');
  const shape = latentShape(model, o.prompts.length, ...imageSize(model, o));
  const scale = o.scale ?? 1;
  const { cond, uncond } = T.noGrad(() => textConditioning(model, o.prompts, scale, o.vocabFile, o.negativePrompts));
  return runSampling(model, o, cond, uncond, shape, {}, {
    task: 'text', width: shape[3] * model.firstStageFactor, height: shape[2] * model.firstStageFactor, ...textParams(o.prompts, o.negativePrompts),
  });
}

/** The recorded prompt (one, or one per image when they differ) and negative prompt. */
export function textParams(prompts: string[], negativePrompts?: string[]): Record<string, ParamValue> {
  const distinct = [...new Set(prompts)];
  return {
    prompt: distinct.length === 1 ? distinct[0] : prompts,
    ...(negativePrompts?.length ? { negative_prompt: negativePrompts.length === 1 ? negativePrompts[0] : negativePrompts } : {}),
  };
}
