// The `ldm` command: `ldm <command> [args]`. Commands are rows of COMMANDS (add one row per command).

import { convertCommand, CONVERT_USAGE } from './convert.js';
import { evalCommand, EVAL_USAGE } from './eval.js';
import { goldenCommand, GOLDEN_USAGE } from './golden.js';
import { modelsCommand, MODELS_USAGE } from './models.js';
import { sampleCommand, SAMPLE_USAGE } from './sample.js';
import { trainClassifierCommand, TRAIN_CLASSIFIER_USAGE } from './train-classifier.js';
import { serveCommand, SERVE_USAGE } from './serve.js';
import { workerCommand, WORKER_USAGE } from './worker.js';
import { trainCommand, TRAIN_USAGE } from './train.js';
import { trainAutoencoderCommand, TRAIN_AUTOENCODER_USAGE } from './train-autoencoder.js';
import { packageVersion } from './version.js';
import { EXIT, EXIT_STATUS_HELP, isInputError } from './errors.js';

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): number | Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  convert: { summary: 'convert a .ckpt to .safetensors', usage: CONVERT_USAGE, run: convertCommand },
  eval: { summary: 'metrics: PSNR/SSIM/LPIPS of autoencoders; FID, precision, recall, class accuracy of samples', usage: EVAL_USAGE, run: evalCommand },
  golden: { summary: 'run golden parity fixtures', usage: GOLDEN_USAGE, run: goldenCommand },
  models: { summary: 'list the embedded models and what each can do', usage: MODELS_USAGE, run: modelsCommand },
  sample: { summary: 'generate images with a LatentDiffusion model', usage: SAMPLE_USAGE, run: sampleCommand },
  serve: { summary: 'a generation server: HTTP API, web page, job queue (--redis: fleets)', usage: SERVE_USAGE, run: serveCommand },
  worker: { summary: 'a fleet worker taking generation jobs from Redis', usage: WORKER_USAGE, run: workerCommand },
  train: { summary: 'train a latent diffusion model (config: model / data / lightning)', usage: TRAIN_USAGE, run: trainCommand },
  'train-classifier': { summary: 'train the small MNIST classifier that ldm eval uses for digits', usage: TRAIN_CLASSIFIER_USAGE, run: trainClassifierCommand },
  'train-autoencoder': { summary: 'train a first-stage autoencoder (KL or VQ, perceptual + GAN loss)', usage: TRAIN_AUTOENCODER_USAGE, run: trainAutoencoderCommand },
};

export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `ldm ${packageVersion()}: Latent Diffusion Models (Rombach et al., CVPR 2022) in TypeScript`,
    'usage: ldm <command> [args]   (ldm <command> --help lists its options and their defaults)',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    '',
    'options:',
    '  -h, --help     this help',
    '  -V, --version  print the version',
    '',
    'start with: ldm sample --class 7 -n 16   (sixteen sevens from the embedded MNIST model, in outputs/)',
    '',
    EXIT_STATUS_HELP,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === '-V' || cmd === 'version') {
    console.log(packageVersion());
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`ldm: unknown command ${cmd}\n${usage()}`);
    return 2;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    console.error(`ldm ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
    return isInputError(e) ? EXIT.usage : EXIT.failed;
  }
}
