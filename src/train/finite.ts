// Non-finite values in training: a NaN or an infinity in a step's losses or gradients stops the run before the
// optimizer applies it (a diverged state is never written to a checkpoint), and a checkpoint holding one is
// neither written nor resumed from. The messages name the step, the loss or the parameter, and the element.

import * as T from '../engine/index.js';

/** A non-finite loss, gradient, weight or optimizer moment (the trainers stop on it; the CLI exits 1). */
export class NonFiniteError extends Error {
  constructor(message: string, readonly step: number | null = null) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/** Index of the first NaN / ±Infinity in a float tensor's values (-1: all finite; integer tensors: -1). */
export function firstNonFinite(t: T.Tensor): number {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') return -1;
  const d = T.contiguousData(t) as Float32Array | Float64Array;
  for (let i = 0; i < d.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity: one subtraction per element.
    if (d[i] - d[i] !== 0) return i;
  }
  return -1;
}

/** "NaN at element 17 of [3, 8, 8]" for the first non-finite value of t; null when all are finite. */
export function describeNonFinite(t: T.Tensor): string | null {
  const i = firstNonFinite(t);
  if (i < 0) return null;
  const d = T.contiguousData(t) as Float32Array | Float64Array;
  let count = 0;
  for (let j = i; j < d.length; j++) if (d[j] - d[j] !== 0) count++;
  return `${d[i]} at element ${i} of [${t.shape.join(', ')}]${count > 1 ? ` (${count} non-finite values)` : ''}`;
}

/** Throw when a logged value of step `step` (1-based, as in metrics.jsonl) is not finite, listing each such value. */
export function assertFiniteLosses(step: number, logs: Record<string, number>, what = 'the loss'): void {
  const bad = Object.entries(logs).filter(([, v]) => typeof v === 'number' && !Number.isFinite(v));
  if (bad.length === 0) return;
  const list = bad.slice(0, 6).map(([k, v]) => `${k} = ${v}`).join(', ') + (bad.length > 6 ? `, … (${bad.length} in all)` : '');
  throw new NonFiniteError(`step ${step}: ${what} is not finite (${list})`, step);
}

/**
 * Throw when a gradient of `params` holds a NaN or an infinity, naming the first such parameter (by the names in
 * `names`, e.g. from module.namedParameters()) and the element. Cheap when all are finite: one pass.
 */
export function assertFiniteGradients(step: number, params: Iterable<T.Tensor>, names: Map<T.Tensor, string>, what = 'gradient'): void {
  const bad: string[] = [];
  let first: string | null = null;
  for (const p of params) {
    if (!p.grad) continue;
    if (firstNonFinite(p.grad) < 0) continue;
    const name = names.get(p) ?? `parameter [${p.shape.join(', ')}]`;
    if (first === null) first = `${name}: ${describeNonFinite(p.grad)}`;
    bad.push(name);
  }
  if (first === null) return;
  throw new NonFiniteError(`step ${step}: the ${what} of ${first}${bad.length > 1 ? ` (${bad.length} parameters have non-finite gradients)` : ''}`, step);
}

/** Parameter → its name in the module's state dict. */
export function parameterNames(m: { namedParameters(prefix?: string): Iterable<[string, T.Tensor]> }): Map<T.Tensor, string> {
  const out = new Map<T.Tensor, string>();
  for (const [k, p] of m.namedParameters()) if (!out.has(p)) out.set(p, k);
  return out;
}

/** Throw when a tensor of `tensors` is not finite: `${where}: ${key} holds NaN at element …`. */
export function assertFiniteTensors(tensors: Iterable<[string, T.Tensor]>, where: string, then: string): void {
  for (const [k, t] of tensors) {
    const d = describeNonFinite(t);
    if (d) throw new NonFiniteError(`${where}: ${k} holds ${d}; ${then}`);
  }
}
