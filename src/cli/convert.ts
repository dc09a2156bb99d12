// `ldm convert <in.ckpt> <out.safetensors>`: rewrite a PyTorch checkpoint's state dict as safetensors
// (same keys, same element types; global_step / epoch kept as metadata), written atomically.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { convertToSafetensors, readCheckpoint } from '../io/ckpt.js';
import { exportWeights } from '../loader/export.js';
import { UsageError } from './args.js';
import { EXIT_STATUS_HELP } from './errors.js';
import { folderProblem } from './folder-check.js';

export const CONVERT_USAGE = `usage: ldm convert [--allow-global module.Name …] <in.ckpt|in.safetensors> <out.safetensors>
  Copies every tensor of the checkpoint's state_dict (EMA shadows included) into a safetensors file.
  --allow-global  accept a pickled class the safe loader refuses, recording it inertly (never run)
  --ema           ship the EMA weights as the model's (model_ema.* copied over model.*, then dropped)
  --half          store the sub-modules' float weights as F16 (schedule buffers and scale_factor stay float32)
  The output's folder must exist; the file appears only when complete (written beside it, then renamed).
  ${EXIT_STATUS_HELP}`;

/** The input must be a file, the output a file name in an existing folder that takes new files. */
function checkPaths(inp: string, out: string): void {
  if (!existsSync(inp)) throw new UsageError(`${inp} does not exist`);
  if (statSync(inp).isDirectory()) throw new UsageError(`${inp} is a folder; give the checkpoint file`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`${out} is a folder; give the name of the file to write`);
  if (path.resolve(out) === path.resolve(inp)) throw new UsageError(`${out} is the input itself; give another name`);
  const dir = path.dirname(path.resolve(out));
  if (!existsSync(dir)) throw new UsageError(`cannot write ${out}: folder ${path.dirname(out)} does not exist`);
  const problem = folderProblem(dir);
  if (problem) throw new UsageError(`cannot write ${out}: ${problem}`);
}

export function convertCommand(argv: string[]): number {
  const allow: string[] = [];
  const pos: string[] = [];
  const exp = { ema: false, half: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--allow-global') {
      const g = argv[++i];
      if (!g || g.startsWith('--') || !/^[\w.]+\.\w+$/.test(g)) throw new UsageError(`--allow-global needs a module.Name (e.g. numpy.core.multiarray.scalar), got ${g === undefined ? 'nothing' : `"${g}"`}`);
      allow.push(g);
    }
    else if (argv[i] === '--ema') exp.ema = true;
    else if (argv[i] === '--half') exp.half = true;
    else if (argv[i] === '--help') {
      console.log(CONVERT_USAGE);
      return 0;
    } else if (argv[i].startsWith('--')) {
      console.error(`ldm convert: unknown option ${argv[i]}\n${CONVERT_USAGE}`);
      return 2;
    } else pos.push(argv[i]);
  }
  if (pos.length !== 2) {
    console.error(CONVERT_USAGE);
    return 2;
  }
  const [inp, out] = pos;
  if ((exp.ema || exp.half) && allow.length) throw new UsageError('--allow-global cannot be combined with --ema / --half');
  checkPaths(inp, out);
  const t0 = Date.now();
  const info = readCheckpoint(inp, { allowGlobals: allow });
  const step = info.globalStep;
  info.close();
  if (exp.ema || exp.half) {
    const e = exportWeights(inp, out, exp);
    console.log(`${inp} → ${out}: ${e.tensors} tensors${exp.ema ? ` (${e.emaSwapped} from the EMA)` : ''}${exp.half ? ', F16 weights' : ''}, ${(e.bytes / 2 ** 20).toFixed(1)} MiB (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  }
  const r = convertToSafetensors(inp, out, { allowGlobals: allow });
  console.log(`${inp} → ${out}: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB${step !== undefined ? `, global_step ${step}` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return 0;
}
