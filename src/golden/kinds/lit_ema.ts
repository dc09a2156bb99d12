// Kind lit_ema: LitEma over a small module rebuilt from weights.safetensors (case.json `module` lists its
// parameters, which of them are trainable, and its buffers). Per case: the initial EMA state, K updates with
// the given parameter changes in between (delta<i>.* added to every float parameter and buffer), the state
// after each, then store → copyTo (module state) → restore (module state).

import * as T from '../../engine/index.js';
import { readSafetensors } from '../../io/safetensors.js';
import { Buffer, Module, Parameter } from '../../nn/index.js';
import { LitEma } from '../../train/ema.js';
import { ioTensor } from '../helpers.js';
import type { GoldenCase, GoldenKind, GoldenOutput } from '../types.js';

interface EmaCase {
  prefix: string;
  decay: number;
  use_num_upates: boolean;
}
interface EmaSpec {
  updates: number;
  cases: EmaCase[];
  module: { parameters: string[]; trainable: string[]; buffers: string[] };
}

/** A module tree whose dotted names are the given state-dict keys (parameters and buffers). */
function moduleFromTensors(c: GoldenCase, spec: EmaSpec): Module {
  if (!c.weightsPath) throw new Error(`${c.dir}: lit_ema needs weights.safetensors`);
  const { tensors } = readSafetensors(c.weightsPath);
  const root = new Module();
  const place = (name: string, make: (t: T.Tensor) => T.Tensor) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${c.weightsPath}: no tensor ${name} (case.json module lists it)`);
    const parts = name.split('.');
    let m = root as unknown as Record<string, unknown>;
    for (const part of parts.slice(0, -1)) {
      if (!(m[part] instanceof Module)) m[part] = new Module();
      m = m[part] as Record<string, unknown>;
    }
    m[parts.at(-1)!] = make(t);
  };
  const trainable = new Set(spec.module.trainable);
  for (const name of spec.module.parameters) {
    place(name, (t) => {
      const p = new Parameter(T.Tensor.fromData(T.contiguousData(t).slice(), [...t.shape]));
      p.requiresGrad = trainable.has(name);
      return p;
    });
  }
  for (const name of spec.module.buffers) place(name, (t) => new Buffer(T.Tensor.fromData(T.contiguousData(t).slice(), [...t.shape])));
  return root;
}

/** A copy of t's values (the EMA and the module are updated in place). */
function snapshot(t: T.Tensor): T.Tensor {
  return T.Tensor.fromData(T.contiguousData(t).slice(), [...t.shape]);
}

function addInPlace(t: T.Tensor, d: T.Tensor, name: string): void {
  if (!T.sameShape(t.shape, d.shape)) throw new RangeError(`lit_ema: delta for ${name} has shape [${d.shape}], the tensor [${t.shape}]`);
  const w = t.data as Float32Array, dv = T.contiguousData(d) as Float32Array;
  for (let i = 0; i < dv.length; i++) w[t.offset + i] = Math.fround(w[t.offset + i] + dv[i]);
}

function stateOutputs(name: string, sd: Map<string, T.Tensor>): GoldenOutput[] {
  return [...sd].map(([k, t]) => ({ name: `${name}${k}`, actual: snapshot(t), exact: t.dtype === 'int32' || t.dtype === 'int64' || k.endsWith('decay') }));
}

export const litEma: GoldenKind = {
  describe: 'LitEma: shadows, decay and num_updates over K updates (float32 decay rule), copy_to and restore',
  run: (c) => {
    const spec = c.spec as unknown as EmaSpec;
    const out: GoldenOutput[] = [];
    for (const cs of spec.cases) {
      const module = moduleFromTensors(c, spec);
      const ema = new LitEma(module, { decay: cs.decay, useNumUpdates: cs.use_num_upates });
      out.push(...stateOutputs(`${cs.prefix}init.`, ema.stateDict()));
      for (let i = 1; i <= spec.updates; i++) {
        for (const [k, t] of [...module.namedParameters(), ...module.namedBuffers()]) {
          if (t.dtype === 'float32') addInPlace(t, ioTensor(c, `delta${i}.${k}`), k);
        }
        ema.update(module);
        out.push(...stateOutputs(`${cs.prefix}update${i}.`, ema.stateDict()));
      }
      ema.store(module.parameters());
      ema.copyTo(module);
      out.push(...stateOutputs(`${cs.prefix}copy_to.`, module.stateDict()));
      ema.restore(module.parameters());
      out.push(...stateOutputs(`${cs.prefix}restore.`, module.stateDict()));
    }
    return out;
  },
};
