// Side files that label an image folder: CSV (RFC 4180: quoted fields, "" inside quotes, CRLF or LF) and
// JSON Lines. Each row keeps its line number so that errors can point at it.

import { readFileSync } from 'node:fs';

export interface Row {
  line: number;
  fields: string[];
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (e) {
    throw new Error(`cannot read the ${what} file ${path}: ${(e as Error).message}`);
  }
}

/** The rows of a CSV file (blank lines skipped). */
export function readCsv(path: string, what = 'CSV'): Row[] {
  const text = readText(path, what);
  const rows: Row[] = [];
  let fields: string[] = [], field = '', quoted = false, line = 1, start = 1, any = false;
  const endRow = () => {
    fields.push(field);
    if (any || fields.length > 1 || field !== '') rows.push({ line: start, fields });
    fields = [];
    field = '';
    any = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') (field += '"'), i++;
        else quoted = false;
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') (quoted = true), (any = true);
    else if (ch === ',') fields.push(field), (field = ''), (any = true);
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      start = line;
    } else field += ch;
  }
  if (quoted) throw new Error(`${path}:${start}: unterminated quoted field`);
  endRow();
  return rows;
}

/** The objects of a JSON Lines file (blank lines skipped). */
export function readJsonl(path: string, what = 'JSONL'): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  readText(path, what).split(/\r?\n/).forEach((s, k) => {
    if (s.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      throw new Error(`${path}:${k + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${path}:${k + 1}: expected a JSON object per line`);
    out.push({ line: k + 1, value: v as Record<string, unknown> });
  });
  return out;
}

/** Normalise a path written in a side file to the folder's relpath form (forward slashes, no ./). */
export function normRel(p: string): string {
  return p.trim().replace(/\\/g, '/').replace(/^(\.\/)+/, '');
}

/**
 * A path → value table from a CSV with columns (path, value) or a JSONL with a path key (`file_name`,
 * `path`, `file` or `image`) and a value key from `valueKeys`. A header row is recognised by its
 * first field (path / file / file_name / filename / image).
 */
export function readPathTable(path: string, valueKeys: string[], what: string): Map<string, { value: string; line: number }> {
  const out = new Map<string, { value: string; line: number }>();
  const put = (rel: string, value: string, line: number) => {
    const k = normRel(rel);
    if (out.has(k)) throw new Error(`${path}:${line}: ${k} is listed twice (first at line ${out.get(k)!.line})`);
    out.set(k, { value, line });
  };
  if (/\.jsonl$/i.test(path)) {
    for (const { line, value } of readJsonl(path, what)) {
      const pk = ['file_name', 'path', 'file', 'image'].find((k) => typeof value[k] === 'string');
      const vk = valueKeys.find((k) => value[k] !== undefined);
      if (!pk) throw new Error(`${path}:${line}: no image path (expected a "file_name", "path", "file" or "image" string)`);
      if (!vk) throw new Error(`${path}:${line}: no ${what} (expected one of ${valueKeys.map((k) => `"${k}"`).join(', ')})`);
      put(value[pk] as string, String(value[vk]), line);
    }
    return out;
  }
  const rows = readCsv(path, what);
  rows.forEach((r, k) => {
    if (k === 0 && /^(path|file|file_?name|image|filepath)$/i.test(r.fields[0].trim())) return;
    if (r.fields.length !== 2) throw new Error(`${path}:${r.line}: expected 2 columns (path,${what}), got ${r.fields.length}`);
    put(r.fields[0], r.fields[1], r.line);
  });
  return out;
}
