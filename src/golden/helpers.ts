// Helpers for golden kinds: build the case's module from config.yaml, load its weights, fetch io tensors.

import * as T from '../engine/index.js';
import { loadCheckpointInto, type LoadOptions } from '../loader/checkpoint.js';
import type { Module } from '../nn/index.js';
import { buildFromConfigFile } from '../loader/targets.js';
import type { GoldenCase } from './types.js';

type ModelClass<M> = abstract new (...args: any[]) => M;

/** Build the module described by the case's config.yaml; it must be an instance of one of `classes`. */
export function buildCaseModel<M extends Module>(c: GoldenCase, ...classes: ModelClass<M>[]): M {
  if (!c.configPath) throw new Error(`${c.dir}: this kind needs a config.yaml`);
  const m = buildFromConfigFile<Module>(c.configPath);
  if (!classes.some((k) => m instanceof k)) {
    throw new Error(`${c.dir}: config.yaml builds a ${m.constructor.name}, this kind needs ${classes.map((k) => k.name).join(' or ')}`);
  }
  return m as M;
}

/** Load the case's weights (strict: every key must match) into `m`. */
export function loadCaseWeights(c: GoldenCase, m: Module, opts: LoadOptions = {}): void {
  if (!c.weightsPath) throw new Error(`${c.dir}: this kind needs weights.safetensors (or model.ckpt)`);
  loadCheckpointInto(m, c.weightsPath, { strict: true, ...opts });
}

/** Build from config.yaml and load the weights. */
export function caseModel<M extends Module>(c: GoldenCase, ...classes: ModelClass<M>[]): M {
  const m = buildCaseModel<M>(c, ...classes);
  loadCaseWeights(c, m);
  return m;
}

/** An input tensor of io.safetensors, by name. */
export function ioTensor(c: GoldenCase, name: string): T.Tensor {
  const t = c.io.get(name);
  if (!t) throw new Error(`${c.dir}/io.safetensors has no tensor ${name} (it has: ${[...c.io.keys()].join(', ')})`);
  return t;
}

/** `t` reshaped to the shape of io tensor `name` (e.g. a scalar loss stored as [1], flat indices stored as [B, H, W]). */
export function likeExpected(c: GoldenCase, name: string, t: T.Tensor): T.Tensor {
  const e = ioTensor(c, name);
  if (e.size !== t.size) throw new Error(`${c.name}: output ${name} has ${t.size} values [${t.shape}], expected ${e.size} [${e.shape}]`);
  return T.sameShape(e.shape, t.shape) ? t : T.reshape(t, e.shape);
}
