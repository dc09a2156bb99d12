// The `ldm` command: `ldm <command> [args]`. Commands are rows of COMMANDS (add one row per command).

import { convertCommand, CONVERT_USAGE } from './convert.js';
import { goldenCommand, GOLDEN_USAGE } from './golden.js';
import { sampleCommand, SAMPLE_USAGE } from './sample.js';

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): number | Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  convert: { summary: 'convert a .ckpt to .safetensors', usage: CONVERT_USAGE, run: convertCommand },
  golden: { summary: 'run golden parity fixtures', usage: GOLDEN_USAGE, run: goldenCommand },
  sample: { summary: 'generate images with a LatentDiffusion model', usage: SAMPLE_USAGE, run: sampleCommand },
};

export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return ['usage: ldm <command> [args]   (ldm <command> --help for details)', '', ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
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
    return 1;
  }
}
