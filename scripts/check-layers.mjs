// Layering check: every import in src/ must point to the importing file's own layer or a lower one, and
// src/ must have no import cycle. Run: node scripts/check-layers.mjs (exit status 1 on any finding).
// Type-only imports (`import type` / `export type`) count for the layers; TypeScript erases them, so a
// cycle that needs one of them is not a load-order cycle: it is listed as a note and does not fail.
//
// The layer order, bottom to top. Folders on one level are siblings: they may import the levels below,
// not each other. A file imports freely inside its own folder. src/index.ts (the public entry) is the top.
export const LAYERS = [
  ['engine'],
  ['nn'],
  ['io'],
  ['models'],
  ['diffusion'],
  ['loader'],
  ['data'],
  ['train', 'metrics'],
  ['tasks'],
  ['serve', 'golden'],
  ['cli'],
  ['index.ts'],
];

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = /\.(ts|mts|mjs)$/;

function walk(dir) {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : SOURCE.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

/** Static `import … from`, `export … from`, side-effect `import '…'` and dynamic `import('…')` specifiers, with line numbers. */
export function importsOf(text) {
  const out = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`])\/\/[^\n]*/g, (m, p) => p + ' '.repeat(m.length - p.length));
  const re = /\b(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m; (m = re.exec(code)); ) {
    const spec = m[2] ?? m[3];
    const line = code.slice(0, m.index).split('\n').length;
    out.push({ spec, line, typeOnly: !!m[1] });
  }
  return out;
}

function resolve(from, spec) {
  if (!spec.startsWith('.')) return null; // packages and node: builtins
  const base = path.resolve(path.dirname(from), spec);
  const stem = base.replace(/\.(js|mjs|ts|mts)$/, '');
  for (const c of [base, `${stem}.ts`, `${stem}.mts`, `${stem}.mjs`, path.join(base, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  return base; // unresolved: still classified by its folder
}

/** The layer of a path inside src/: [level, name], or null outside src/. */
function layerOf(src, file) {
  const rel = path.relative(src, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const top = rel.split(path.sep)[0];
  const level = LAYERS.findIndex((l) => l.includes(top));
  return { level, name: top };
}

/** Check the tree under `src`: upward or sideways imports and import cycles. */
export function checkLayers(src) {
  const files = walk(src);
  const violations = [];
  const graph = new Map(files.map((f) => [f, []]));
  const runtime = new Map(files.map((f) => [f, []]));
  for (const f of files) {
    const own = layerOf(src, f);
    if (own.level < 0) violations.push({ file: f, line: 0, message: `${own.name} is not in the layer order (scripts/check-layers.mjs LAYERS)` });
    for (const { spec, line, typeOnly } of importsOf(readFileSync(f, 'utf8'))) {
      const target = resolve(f, spec);
      if (!target) continue;
      const t = layerOf(src, target);
      if (!t) continue;
      if (graph.has(target)) {
        graph.get(f).push({ to: target, line });
        if (!typeOnly) runtime.get(f).push({ to: target, line });
      }
      if (t.name === own.name || own.level < 0) continue;
      if (t.level < 0) violations.push({ file: f, line, message: `imports ${spec}: ${t.name} is not in the layer order` });
      else if (t.level > own.level) violations.push({ file: f, line, message: `imports ${spec}: ${own.name} (level ${own.level}) may not import the higher layer ${t.name} (level ${t.level})` });
      else if (t.level === own.level) violations.push({ file: f, line, message: `imports ${spec}: ${own.name} and ${t.name} are siblings on level ${own.level} and may not import each other` });
    }
  }
  const cycles = findCycles(runtime);
  const inCycle = new Set(cycles.flat());
  const typeCycles = findCycles(graph).filter((c) => !c.some((f) => inCycle.has(f)));
  return { files: files.length, violations, cycles, typeCycles };
}

/** One concrete cycle per strongly connected component (Tarjan), each as the list of files around it. */
function findCycles(graph) {
  let index = 0;
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], sccs = [];
  const strong = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const { to } of graph.get(v)) {
      if (!idx.has(to)) { strong(to); low.set(v, Math.min(low.get(v), low.get(to))); }
      else if (onStack.has(to)) low.set(v, Math.min(low.get(v), idx.get(to)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1 || graph.get(v).some((e) => e.to === v)) sccs.push(new Set(comp));
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  // Within each component, a shortest path from its first file back to itself.
  return sccs.map((comp) => {
    const start = [...comp].sort()[0];
    const prev = new Map([[start, null]]);
    const queue = [start];
    let end = null;
    while (queue.length && !end) {
      const v = queue.shift();
      for (const { to } of graph.get(v)) {
        if (!comp.has(to)) continue;
        if (to === start) { end = v; break; }
        if (!prev.has(to)) { prev.set(to, v); queue.push(to); }
      }
    }
    const cycle = [];
    for (let v = end; v !== null; v = prev.get(v)) cycle.unshift(v);
    cycle.push(start);
    return cycle;
  });
}

export function formatReport(src, r) {
  const rel = (f) => path.relative(path.dirname(src), f);
  const lines = r.violations.map((v) => `${rel(v.file)}${v.line ? `:${v.line}` : ''}: ${v.message}`);
  for (const c of r.cycles) lines.push(`import cycle: ${c.map(rel).join(' → ')}`);
  return lines.join('\n');
}

export function formatNotes(src, r) {
  const rel = (f) => path.relative(path.dirname(src), f);
  return r.typeCycles.map((c) => `note: type-only import cycle (erased at run time): ${c.map(rel).join(' → ')}`).join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const r = checkLayers(src);
  const text = formatReport(src, r);
  if (text) console.error(text);
  const notes = formatNotes(src, r);
  if (notes) console.log(notes);
  console.log(`${r.files} files: ${r.violations.length} layering violation(s), ${r.cycles.length} import cycle(s)`);
  console.log(`layers (bottom → top): ${LAYERS.map((l) => l.join(' | ')).join(' → ')}`);
  process.exit(r.violations.length + r.cycles.length > 0 ? 1 : 0);
}
