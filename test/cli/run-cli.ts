// Runs `ldm …` in-process through the CLI's main(), capturing everything it prints (stderr writes,
// console.error and console.log) and its exit code.
import { main } from '../../src/cli/main.js';

export async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const w = process.stderr.write.bind(process.stderr), e = console.error, l = console.log;
  process.stderr.write = ((s: string) => ((out += s), true)) as typeof process.stderr.write;
  console.error = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  try {
    return { code: await main(args), out };
  } finally {
    process.stderr.write = w;
    console.error = e;
    console.log = l;
  }
}
