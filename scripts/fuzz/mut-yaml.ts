// YAML config mutators: values replaced at random keys, hostile targets, alias bombs, recursive aliases,
// python tags, deep nesting, line edits, plus the generic byte mutators.

import { dec, enc, generic, type Rng } from './rng.js';
import type { Mutated } from './mut-ckpt.js';

const VALUES = ['1e9', '-1', '0', '1e308', '.nan', '.inf', '-.inf', 'null', '~', '[]', '{}', '"x"', '2147483648', '0.5', '[1e9, 1e9]', '[-1]',
  'true', '__proto__', 'constructor', '!!python/object/apply:os.system ["touch /tmp/x"]', '*undefined_alias', '&a [*a]', '[[[[[[1]]]]]]',
  '100000', '[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]', 'x'.repeat(10000), '!!binary aGVsbG8='];
const TARGETS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__is_first_stage__', '__is_unconditional__', 'ldm.models.diffusion.ddpm.LatentDiffusion',
  'torch.nn.Identity', 'os.system', 'builtins.eval', '', 'ldm.modules.diffusionmodules.openaimodel.UNetModel', 'valueOf'];

function billionLaughs(r: Rng): string {
  const levels = r.pick([6, 9, 12]);
  let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < levels; i++) s += `a${i}: &a${i} [${new Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  return `${s}model:\n  target: torch.nn.Identity\n  params:\n    p: *a${levels - 1}\n`;
}

export function mutateYaml(seed: { bytes: Uint8Array }, r: Rng): Mutated {
  if (r.chance(0.2)) return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
  const lines = dec(seed.bytes).split('\n');
  const valued = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*[\w-]+:\s*\S/.test(l) || /^\s*- \S/.test(l));
  const k = r.int(10);
  let how: string;
  if (k <= 2 && valued.length) {
    const [l, i] = r.pick(valued);
    const v = r.pick(VALUES);
    lines[i] = l.replace(/^(\s*(?:[\w-]+:|-))\s*.*$/, `$1 ${v}`);
    how = `line ${i + 1} = ${v.slice(0, 40)}`;
  } else if (k === 3) {
    const ts = lines.map((l, i) => [l, i] as const).filter(([l]) => /target:/.test(l));
    const [l, i] = r.pick(ts);
    const t = r.pick(TARGETS);
    lines[i] = l.replace(/target:.*/, `target: ${t}`);
    how = `target → ${t}`;
  } else if (k === 4) {
    return { bytes: enc(billionLaughs(r)), how: 'alias bomb' };
  } else if (k === 5) {
    const v = r.pick(['&r [*r]', '&r {a: *r}', '&r\n      target: torch.nn.Identity\n      params: {x: *r}']);
    const [l, i] = valued.length ? r.pick(valued) : [lines[0], 0];
    lines[i] = l.replace(/^(\s*(?:[\w-]+:|-))\s*.*$/, `$1 ${v}`);
    how = `recursive alias at line ${i + 1}`;
  } else if (k === 6) {
    const d = r.pick([100, 5000, 100000]);
    return { bytes: enc(`model:\n  target: torch.nn.Identity\n  params:\n    p: ${'['.repeat(d)}${']'.repeat(d)}\n`), how: `nested flow sequence ${d}` };
  } else if (k === 7) {
    // timesteps and friends: numbers that size allocations
    const keys = ['timesteps', 'image_size', 'model_channels', 'num_res_blocks', 'ch', 'z_channels', 'n_embed', 'n_classes', 'embed_dim', 'num_heads', 'context_dim', 'resolution', 'transformer_depth', 'num_timesteps_cond'];
    const key = r.pick(keys);
    const v = r.pick(['1e9', '100000', '-1', '0', '2147483647', '1.5', '65536']);
    let hit = -1;
    lines.forEach((l, i) => { if (new RegExp(`^\\s*${key}:`).test(l)) hit = i; });
    if (hit >= 0) lines[hit] = lines[hit].replace(/:.*/, `: ${v}`);
    how = `${key}: ${v}${hit < 0 ? ' (absent)' : ''}`;
  } else if (k === 8) {
    const i = r.int(lines.length);
    if (r.chance(0.5)) lines.splice(i, 1);
    else lines.splice(i, 0, lines[r.int(lines.length)]);
    how = `line ${i + 1} deleted/duplicated`;
  } else {
    const i = r.int(lines.length);
    lines[i] = r.pick(['  ' + lines[i], lines[i].trimStart(), lines[i] + ': x', '!!python/name:os.system', '<<: *nothing', '? [a, b]\n: c']);
    how = `line ${i + 1} reshaped`;
  }
  return { bytes: enc(lines.join('\n')), how };
}
