// Types shared by the golden runner and its kinds.
//
// A golden folder (see ../shared/golden/README.md) holds case.json ({kind, ...}), io.safetensors (inputs and
// expected outputs), and usually config.yaml, weights.safetensors and sometimes model.ckpt. A kind turns a
// folder into named outputs; the runner compares each with the tensor of the same name in io.safetensors.

import type * as T from '../engine/index.js';

export interface GoldenCase {
  /** Absolute folder path and its base name. */
  dir: string;
  name: string;
  kind: string;
  /** The parsed case.json. */
  spec: Record<string, unknown>;
  /** io.safetensors: inputs and expected outputs. */
  io: Map<string, T.Tensor>;
  /** config.yaml, when present. */
  configPath: string | null;
  /** The weights the kind should load: weights.safetensors, or model.ckpt when the runner is asked to use it. */
  weightsPath: string | null;
  /** model.ckpt, when present. */
  ckptPath: string | null;
}

export interface GoldenOutput {
  /** Name of the expected tensor in io.safetensors (and of the output line). */
  name: string;
  actual: T.Tensor;
  /** Defaults to io.get(name). */
  expected?: T.Tensor;
  /** Relative L2 tolerance (default 1e-4); ignored with exact. */
  tol?: number;
  /** Compare values for equality (indices, integer outputs). */
  exact?: boolean;
}

export interface GoldenKind {
  /** What the kind computes, in a line (shown when listing kinds). */
  describe: string;
  /** Runs with gradients enabled: wrap pure inference in T.noGrad (lets forward passes free their intermediates). */
  run(c: GoldenCase): GoldenOutput[] | Promise<GoldenOutput[]>;
}

export interface GoldenResult {
  case: string;
  output: string;
  /** Relative L2 error (exact comparisons: fraction of differing elements). */
  error: number;
  tol: number;
  exact: boolean;
  pass: boolean;
  /** Extra words for the line (shape problems, mismatch counts). */
  note?: string;
}
