// Helpers for golden kinds: build the case's module from config.yaml, load its weights, fetch io tensors.

import * as T from '../engine/index.js';
import { loadCheckpointInto, type LoadOptions } from '../io/ckpt.js';
import type { Module } from '../nn/index.js';
import { buildFromConfigFile } from '../models/targets.js';
import type { GoldenCase } from './types.js';

/** Build the module described by the case's config.yaml. */
export function buildCaseModel<M = Module>(c: GoldenCase): M {
  if (!c.configPath) throw new Error(`${c.dir}: this kind needs a config.yaml`);
  return buildFromConfigFile<M>(c.configPath);
}

/** Load the case's weights (strict: every key must match) into `m`. */
export function loadCaseWeights(c: GoldenCase, m: Module, opts: LoadOptions = {}): void {
  if (!c.weightsPath) throw new Error(`${c.dir}: this kind needs weights.safetensors (or model.ckpt)`);
  loadCheckpointInto(m, c.weightsPath, { strict: true, ...opts });
}

/** Build from config.yaml and load the weights. */
export function caseModel<M extends Module>(c: GoldenCase, opts: LoadOptions = {}): M {
  const m = buildCaseModel<M>(c);
  loadCaseWeights(c, m, opts);
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
