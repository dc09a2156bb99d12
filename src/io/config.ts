// Official config.yaml files, read unchanged: a tree of `{target: "python.class.Path", params: {...}}` nodes
// (the whole file usually has `model:`, plus `data:` and `lightning:` sections we do not need).
//
// `Params` reads a node's params with types checked and remembers which keys were read, so that an
// unknown parameter is reported with its full config path (model.params.first_stage_config.params.ddconfig.foo)
// instead of being silently ignored.

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** A `{target, params}` node, or one of the sentinel strings (`__is_unconditional__`, `__is_first_stage__`). */
export type ConfigNode = { target: string; params?: Record<string, unknown> | null; [k: string]: unknown } | string;

export class ConfigError extends Error {}

/** Config files are a few KB; anything this large is not one. */
export const MAX_CONFIG_BYTES = 1 << 20;
/** Deepest `[`/`{` nesting accepted in a config's flow collections (the parser recurses on them). */
const MAX_FLOW_DEPTH = 64;

/**
 * Parse a YAML file; returns the whole document. Refused before parsing: files over 1 MiB and deeply
 * nested flow collections; while parsing: more than 100 alias expansions (alias bombs); after: recursive
 * aliases (a structure containing itself), named by their config path.
 */
export function readYaml(path: string): Record<string, unknown> {
  let doc: unknown;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read the config (${(e as Error).message})`);
  }
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: ${text.length} characters is too large for a config file (limit ${MAX_CONFIG_BYTES})`);
  const deep = flowDepth(text);
  if (deep) throw new ConfigError(`${path}: line ${deep.line}: collections nested more than ${MAX_FLOW_DEPTH} levels deep`);
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${path}: expected a mapping at the top level`);
  const cycle = findCycle(doc, '', new Set());
  if (cycle !== null) throw new ConfigError(`${path}: ${cycle || 'the document'} contains itself (a recursive YAML alias)`);
  return doc as Record<string, unknown>;
}

/** The first line where `[`/`{` nesting (outside quotes and comments) passes the limit, or null. */
function flowDepth(text: string): { line: number } | null {
  let depth = 0, line = 1, quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote || c === '\n') quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    else if (c === '[' || c === '{') { if (++depth > MAX_FLOW_DEPTH) return { line }; }
    else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return null;
}

/** Config path of a value that contains itself, or null when the structure is a tree (shared aliases are fine). */
function findCycle(v: unknown, path: string, open: Set<unknown>): string | null {
  if (!v || typeof v !== 'object') return null;
  if (open.has(v)) return path;
  open.add(v);
  for (const [k, x] of Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v)) {
    const hit = findCycle(x, joinPath(path, k), open);
    if (hit !== null) return hit;
  }
  open.delete(v);
  return null;
}

/**
 * The model node of a config file and its path: `model` for an official config (`model: {target, params}`),
 * or the root for a file that is a bare `{target, params}` node (the golden fixtures).
 */
export function modelNode(doc: Record<string, unknown>, file = 'config'): { node: ConfigNode; path: string } {
  if (typeof doc.target === 'string') return { node: doc as ConfigNode, path: '' };
  const m = doc.model;
  if (m && typeof m === 'object' && typeof (m as Record<string, unknown>).target === 'string') return { node: m as ConfigNode, path: 'model' };
  throw new ConfigError(`${file}: no model configuration (expected a top-level "model: {target, params}" or "target:")`);
}

export function joinPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

type Builder = (node: ConfigNode, path: string) => unknown;

/** Ranges of the parameters that size allocations even in a shape-only build (a schedule of `timesteps`
 *  float64 values, embedding tables, spatial sizes): a config beyond them is refused with its path. */
const SIZE_LIMITS: Record<string, [number, number]> = {
  timesteps: [1, 100000], num_timesteps_cond: [1, 100000], image_size: [1, 65536], resolution: [1, 65536],
  n_embed: [1, 1 << 24], n_classes: [1, 1 << 24], vocab_size: [1, 1 << 24], max_seq_len: [1, 1 << 20],
  max_position_embeddings: [1, 1 << 20],
  // Repeat counts: each one builds that many blocks (the released models use at most 32 layers).
  num_res_blocks: [0, 64], transformer_depth: [1, 64], n_layer: [1, 256], num_hidden_layers: [1, 256],
  n_layers: [0, 16], disc_num_layers: [0, 16], n_stages: [0, 16],
};

/** A value for messages, safe for circular and huge ones. */
function show(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 120)}…` : s;
  } catch {
    return Array.isArray(v) ? 'a list' : typeof v;
  }
}

/** Typed, tracked access to one params mapping. */
export class Params {
  private readonly used = new Set<string>();
  private readonly children: Params[] = [];

  constructor(
    readonly raw: Record<string, unknown>,
    /** Config path of this mapping, e.g. `model.params` or `model.params.first_stage_config.params.ddconfig`. */
    readonly path: string,
    /** Target whose params these are (for messages). */
    readonly target: string,
    private readonly builder?: Builder,
  ) {}

  private at(key: string): string {
    return joinPath(this.path, key);
  }
  private err(key: string, what: string): never {
    throw new ConfigError(`${this.at(key)}: ${what} (${this.target})`);
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** The raw value (marks the key as known). */
  get(key: string): unknown {
    this.used.add(key);
    return this.raw[key];
  }

  /** Mark keys as known but without effect in this port (e.g. `monitor`, `image_key`). */
  ignore(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }

  number(key: string, dflt?: number): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.err(key, 'required number is missing');
      return dflt!;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.err(key, `expected a number, got ${show(v)}`);
    const lim = Object.hasOwn(SIZE_LIMITS, key) ? SIZE_LIMITS[key] : undefined;
    if (lim && ((v as number) < lim[0] || (v as number) > lim[1])) this.err(key, `${v} is out of range (${lim[0]} … ${lim[1]})`);
    return v as number;
  }

  int(key: string, dflt?: number): number {
    const v = this.number(key, dflt);
    if (!Number.isInteger(v)) this.err(key, `expected an integer, got ${v}`);
    return v;
  }

  optInt(key: string): number | null {
    return this.has(key) ? this.int(key) : (this.get(key), null);
  }

  bool(key: string, dflt?: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.err(key, 'required boolean is missing');
      return dflt!;
    }
    if (typeof v !== 'boolean') this.err(key, `expected true/false, got ${show(v)}`);
    return v as boolean;
  }

  string(key: string, dflt?: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.err(key, 'required string is missing');
      return dflt!;
    }
    if (typeof v !== 'string') this.err(key, `expected a string, got ${show(v)}`);
    return v as string;
  }

  optString(key: string): string | null {
    return this.has(key) ? this.string(key) : (this.get(key), null);
  }

  /** One of the given strings. */
  oneOf<S extends string>(key: string, choices: readonly S[], dflt?: S): S {
    const v = this.string(key, dflt);
    if (!choices.includes(v as S)) this.err(key, `expected one of ${choices.join(', ')}, got ${show(v)}`);
    return v as S;
  }

  numbers(key: string, dflt?: number[]): number[] {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.err(key, 'required list of numbers is missing');
      return [...dflt!];
    }
    // A single number where a list is allowed (e.g. attention_resolutions: 16) is taken as a one-element list.
    const arr = Array.isArray(v) ? v : typeof v === 'number' ? [v] : this.err(key, `expected a list of numbers, got ${show(v)}`);
    for (const x of arr) if (typeof x !== 'number') this.err(key, `expected a list of numbers, got ${show(v)}`);
    return arr as number[];
  }

  ints(key: string, dflt?: number[]): number[] {
    const v = this.numbers(key, dflt);
    for (const x of v) if (!Number.isInteger(x)) this.err(key, `expected integers, got ${show(v)}`);
    return v;
  }

  /** A nested mapping read with its own key tracking (e.g. `ddconfig`). */
  sub(key: string, optional = false): Params | null {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (optional) return null;
      this.err(key, 'required mapping is missing');
    }
    if (typeof v !== 'object' || Array.isArray(v)) this.err(key, `expected a mapping, got ${show(v)}`);
    const child = new Params(v as Record<string, unknown>, this.at(key), this.target, this.builder);
    this.children.push(child);
    return child;
  }

  /** Build the nested `{target, params}` node at `key` through the targets table. */
  instantiate<R = unknown>(key: string): R {
    const v = this.get(key);
    if (v === undefined || v === null) this.err(key, 'required sub-configuration is missing');
    if (!this.builder) this.err(key, 'no target table to build sub-configurations');
    return this.builder!(v as ConfigNode, this.at(key)) as R;
  }

  /** Throw if any key was never read: names the first unknown parameter with its full path. */
  assertAllUsed(): void {
    const unknown = Object.keys(this.raw).filter((k) => !this.used.has(k));
    if (unknown.length > 0) {
      throw new ConfigError(`unknown parameter ${this.at(unknown[0])} for ${this.target}${unknown.length > 1 ? ` (also: ${unknown.slice(1).join(', ')})` : ''}`);
    }
    for (const c of this.children) c.assertAllUsed();
  }
}
