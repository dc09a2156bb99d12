// The LatentInpaintDiffusion row of the targets table: Stable Diffusion's 9-channel inpainting model
// (configs/stable-diffusion/v1-inpainting-inference.yaml of runwayml/stable-diffusion, ldm/models/diffusion/ddpm.py).
// The class is LatentDiffusion with `conditioning_key: hybrid` and a recipe for its concat input: the
// conditioning images named by `concat_keys` ("mask", then "masked_image"), the mask resized to the latent and
// the masked image encoded by the first stage, concatenated in that order behind the noisy latent. Its own
// params only steer training (which input-conv weights are fine-tuned, what is logged); the network and the
// checkpoint keys are LatentDiffusion's.

import { ConfigError, type Params } from '../io/config.js';
import { buildLatentDiffusion, type LatentDiffusion } from '../diffusion/latent-diffusion.js';
import type { UNetBuildOptions } from '../models/unet/build.js';

/** What `concat_keys` / `masked_image_key` say about the concat conditioning, in UNet input order. */
export interface InpaintConcat {
  concatKeys: string[];
  maskedImageKey: string;
}

/** Reads and checks LatentInpaintDiffusion's own params (the defaults are the reference's). */
export function readInpaintParams(p: Params): InpaintConcat {
  const raw = p.get('concat_keys');
  const concatKeys = raw === undefined || raw === null ? ['mask', 'masked_image'] : raw;
  if (!Array.isArray(concatKeys) || concatKeys.length === 0 || !concatKeys.every((k) => typeof k === 'string')) {
    throw new ConfigError(`${p.path}.concat_keys: expected a list of input names, got ${JSON.stringify(raw)} (${p.target})`);
  }
  const maskedImageKey = p.string('masked_image_key', 'masked_image');
  if (!concatKeys.includes(maskedImageKey)) {
    throw new ConfigError(`${p.path}.masked_image_key: ${JSON.stringify(maskedImageKey)} is not one of concat_keys [${concatKeys.join(', ')}] (${p.target})`);
  }
  // fine-tuning bookkeeping (which weights init_from_ckpt widens, what log_images shows): no effect on sampling
  p.ignore('finetune_keys', 'keep_finetune_dims', 'c_concat_log_start', 'c_concat_log_end');
  return { concatKeys: concatKeys as string[], maskedImageKey };
}

const CONCAT = new WeakMap<LatentDiffusion, InpaintConcat>();

/** The concat recipe of a model built from a LatentInpaintDiffusion config (undefined for other models). */
export function inpaintConcat(model: LatentDiffusion): InpaintConcat | undefined {
  return CONCAT.get(model);
}

export function buildLatentInpaintDiffusion(p: Params, path = '', opts: UNetBuildOptions = {}): LatentDiffusion {
  const concat = readInpaintParams(p);
  const model = buildLatentDiffusion(p, path, opts);
  CONCAT.set(model, concat);
  return model;
}
