// Command-line options from one table per command: the parser, the --help text (every option with its
// default) and the errors all read the same rows. `--name value`, `--name=value`, `-x value`; flags take
// no value; an option marked `repeat` may be given several times.

export interface OptionSpec {
  /** Long name, without the dashes. */
  name: string;
  /** One-letter short form. */
  short?: string;
  /** A flag takes no value. */
  flag?: boolean;
  /** What the value looks like in the help (e.g. N, FILE). */
  value?: string;
  repeat?: boolean;
  /** The default, as shown in the help (omitted: none). */
  default?: string | number;
  help: string;
  /** A heading the option is listed under. */
  group?: string;
}

export class UsageError extends Error {}

export interface ParsedArgs {
  values: Map<string, string[]>;
  flags: Set<string>;
  positional: string[];
}

export function parseArgs(argv: string[], specs: readonly OptionSpec[], maxPositional = 0): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let spec: OptionSpec | undefined, inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = a.slice(2, eq === -1 ? undefined : eq);
      spec = byName.get(key);
      if (!spec) throw new UsageError(`unknown option --${key}${suggest(key, specs)}`);
      if (eq !== -1) inline = a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      spec = byShort.get(a.slice(1, 2));
      if (!spec || (a.length > 2 && spec.flag)) throw new UsageError(`unknown option ${a}`);
      if (a.length > 2) inline = a.slice(2);
    } else {
      if (positional.length >= maxPositional) throw new UsageError(`unexpected argument "${a}"${maxPositional ? '' : ' (options start with --)'}`);
      positional.push(a);
      continue;
    }
    if (spec.flag) {
      if (inline !== undefined) throw new UsageError(`--${spec.name} takes no value`);
      flags.add(spec.name);
      continue;
    }
    let v = inline;
    if (v === undefined) {
      // the next word is another option (e.g. `--class -o out`): the value is missing, not "-o"
      const next = argv[i + 1];
      const isOption = next !== undefined && (next.startsWith('--') ? byName.has(next.slice(2).split('=')[0]) : /^-[A-Za-z]/.test(next) && byShort.has(next[1]));
      if (next === undefined || isOption) throw new UsageError(`--${spec.name} needs a value${next !== undefined ? ` (got the option ${next})` : ''}`);
      v = argv[++i];
    }
    const prev = values.get(spec.name) ?? [];
    if (prev.length && !spec.repeat) throw new UsageError(`--${spec.name} given ${prev.length + 1} times`);
    values.set(spec.name, [...prev, v]);
  }
  return { values, flags, positional };
}

function suggest(key: string, specs: readonly OptionSpec[]): string {
  const near = specs.find((s) => s.name.startsWith(key) || key.startsWith(s.name));
  return near ? ` (did you mean --${near.name}?)` : '';
}

/** The options part of a --help text: one line per option, grouped, with its default. */
export function formatOptions(specs: readonly OptionSpec[]): string {
  const lines: string[] = [];
  const col = (s: OptionSpec) => `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.flag ? '' : ` ${s.value ?? 'VALUE'}`}`;
  const w = Math.min(34, Math.max(...specs.map((s) => col(s).length)));
  let group: string | undefined;
  for (const s of specs) {
    if (s.group !== group) {
      group = s.group;
      if (group) lines.push('', `${group}:`);
    }
    const left = `  ${col(s).padEnd(w)}  `;
    const def = s.default !== undefined ? ` (default: ${s.default})` : '';
    lines.push(col(s).length > w ? `  ${col(s)}\n${' '.repeat(w + 4)}${s.help}${def}` : `${left}${s.help}${def}`);
  }
  return lines.join('\n');
}

/** The single value of an option (undefined when not given). */
export function one(p: ParsedArgs, key: string): string | undefined {
  return p.values.get(key)?.[0];
}

export function num(p: ParsedArgs, key: string, kind: 'int' | 'float' = 'float'): number | undefined {
  const v = one(p, key);
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (kind === 'int' && !Number.isInteger(x))) {
    throw new UsageError(`--${key} expects ${kind === 'int' ? 'an integer' : 'a number'}, got "${v}"`);
  }
  return x;
}
