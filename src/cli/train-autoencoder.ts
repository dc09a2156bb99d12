// `ldm train-autoencoder`: train a first stage (AutoencoderKL / VQModel with their perceptual + GAN losses)
// from a reference-style config — a thin layer over trainAutoencoder (src/train/train-autoencoder.ts).

import { trainAutoencoder } from '../train/train-autoencoder.js';
import { runTrainCommand, TRAIN_OPTIONS } from './train.js';

export const TRAIN_AUTOENCODER_USAGE = `usage: ldm train-autoencoder --config <config.yaml> [--name N] [--resume <run dir | latest>] [--max-steps N] [key=value …]
  Trains ldm.models.autoencoder.AutoencoderKL (LPIPSWithDiscriminator) or VQModel (VQLPIPSWithDiscriminator): per batch a
  generator step and a discriminator step (Adam, betas 0.5, 0.9). Writes logs/<time>_<name>/{checkpoints, configs, images}
  (inputs above reconstructions), metrics.jsonl, loss.svg. A checkpoint folder is what an LDM config's
  first_stage_config.params.ckpt_path points at.
${TRAIN_OPTIONS}
  --lpips-weights FILE LPIPS weights (VGG16 + lin heads: a .ckpt/.safetensors of the LPIPS module, or a first-stage
                       checkpoint with loss.perceptual_loss.*)            (default: training.lpips_weights; none →
                       perceptual_weight 0, with a notice)`;

export function trainAutoencoderCommand(argv: string[]): Promise<number> {
  return runTrainCommand('train-autoencoder', TRAIN_AUTOENCODER_USAGE, argv, trainAutoencoder, { lpips: true });
}
