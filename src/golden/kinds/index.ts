// The golden kinds: case.json's `kind` → what to run. One file per kind; to add one, import it and add a row.

import type { GoldenKind } from '../types.js';
import { autoencoderKL } from './autoencoder_kl.js';
import { discriminator } from './discriminator.js';
import { vq } from './vq.js';
import { unet } from './unet.js';
import { bertEmbedder } from './bert_embedder.js';
import { schedules } from './schedules.js';
import { ldmSample } from './ldm_sample.js';
import { ldmTrainStep } from './ldm_train_step.js';
import { clipTokenizer } from './clip_tokenizer.js';
import { clipText } from './clip_text.js';
import { litEma } from './lit_ema.js';
import { lrSchedule } from './lr_schedule.js';
import { aeTrainStep, vqTrainStep } from './ae_train_step.js';
import { ldmScaleByStd } from './ldm_scale_by_std.js';

export const KINDS: Record<string, GoldenKind> = {
  autoencoder_kl: autoencoderKL,
  vq,
  discriminator,
  unet,
  bert_embedder: bertEmbedder,
  schedules,
  ldm_sample: ldmSample,
  ldm_train_step: ldmTrainStep,
  clip_tokenizer: clipTokenizer,
  clip_text: clipText,
  lit_ema: litEma,
  lr_schedule: lrSchedule,
  ae_train_step: aeTrainStep,
  vq_train_step: vqTrainStep,
  ldm_scale_by_std: ldmScaleByStd,
};

export function knownKinds(): string[] {
  return Object.keys(KINDS).sort();
}
