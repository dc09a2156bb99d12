// safetensors mutators: header fields (null, negative, huge, overlapping offsets, shapes, dtypes), header length,
// deeply nested JSON, plus the generic byte mutators.

import { concat, dec, enc, generic, INTERESTING, type Rng } from './rng.js';
import type { Mutated } from './mut-ckpt.js';

function split(b: Uint8Array): { header: Record<string, Record<string, unknown>>; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return { header: JSON.parse(dec(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
}

function join(header: unknown, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const h = enc(typeof header === 'string' ? header : JSON.stringify(header));
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  return concat(head, h, data);
}

const ODD: unknown[] = [null, -1, -8, 0, 2 ** 31, 2 ** 53, 1e300, 1.5, 'x', [], {}, true, [1, 2, 3], -0];

export function mutateSafetensors(seed: { bytes: Uint8Array }, r: Rng): Mutated {
  if (r.chance(0.3)) return { bytes: generic(seed.bytes, r), how: 'generic bytes' };
  const { header, data } = split(seed.bytes);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = r.pick(names);
  const t = header[name] as { dtype: unknown; shape: unknown; data_offsets: unknown };
  const k = r.int(12);
  let how: string;
  switch (k) {
    case 0: { const f = r.pick(['dtype', 'shape', 'data_offsets']); (t as Record<string, unknown>)[f] = r.pick(ODD); how = `${name}.${f} = ${JSON.stringify((t as Record<string, unknown>)[f])}`; break; }
    case 1: { const o = t.data_offsets as number[]; o[r.int(2)] = r.pick([-8, -1, -100, 2 ** 40, data.length + 1, 2 ** 53]); how = `${name} offsets ${JSON.stringify(o)}`; break; }
    case 2: { const other = header[r.pick(names)] as { data_offsets: number[] }; const o = t.data_offsets as number[]; const len = o[1] - o[0]; t.data_offsets = [other.data_offsets[0], other.data_offsets[0] + len]; how = `${name} overlaps another tensor`; break; }
    case 3: { const s = t.shape as number[]; if (s.length) s[r.int(s.length)] = r.pick([-1, -4, 0, 2 ** 31, 2 ** 53, 1e20, 0.5]); else t.shape = [-1]; how = `${name} shape ${JSON.stringify(t.shape)}`; break; }
    case 4: { const s = t.shape as number[]; t.shape = [-s.reduce((a, b) => a * b, 1), -1]; how = `${name} two negative dims`; break; }
    case 5: { t.dtype = r.pick(['F32', 'F16', 'I64', 'U8', 'F64', 'BOOL', 'Q4', 'f32', '']); how = `${name} dtype ${t.dtype}`; break; }
    case 6: { // header length beyond the file / inside the header
      const n = r.pick([BigInt(seed.bytes.length), 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 3n]);
      return { bytes: join(header, data, n), how: `header length ${n}` };
    }
    case 7: { const depth = r.pick([1000, 100000, 1000000]); const s = `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`; return { bytes: join(s, data), how: `nested JSON ${depth}` }; }
    case 8: { header.__metadata__ = r.pick([{ global_step: 5 }, { a: { b: 1 } }, [1], 'x', null, { format: 'pt', global_step: '1e400' }] as never); how = `metadata ${JSON.stringify(header.__metadata__)}`; break; }
    case 9: { header[r.pick(['__proto__', 'constructor', 'toString', ''])] = { ...t }; how = 'odd tensor name'; break; }
    case 10: { // shape product overflows to the same byte count
      t.shape = [2 ** 26, 2 ** 26, 0]; how = `${name} shape with a zero dim and huge others`; break;
    }
    default: { // extra data or a trailing gap
      return { bytes: r.chance(0.5) ? concat(seed.bytes, new Uint8Array(r.pick(INTERESTING.filter((x) => x > 0 && x < 1e6)))) : seed.bytes.slice(0, seed.bytes.length - 1 - r.int(8)), how: 'data length changed' };
    }
  }
  return { bytes: join(header, data), how };
}
