// Noise sources for the samplers: seedable (the engine's platform-independent generator) or replayed
// from given tensors (parity tests feed the reference's x_T / per-step noise this way).

import * as T from '../engine/index.js';

/** Returns a fresh standard-normal tensor of the given shape (float32) on every call. */
export type NoiseFn = (shape: T.Shape) => T.Tensor;

/** Deterministic noise from a seed: the same seed gives the same sequence on every machine. */
export function seededNoise(seed: number): NoiseFn {
  const gen = new T.Generator(seed);
  return (shape) => T.randn(shape, gen);
}

/** Noise from a generator the caller owns (e.g. shared between x_T and the per-step noise). */
export function generatorNoise(gen: T.Generator): NoiseFn {
  return (shape) => T.randn(shape, gen);
}

/** Replays the given tensors in order (copies, so the caller's tensors survive sampling scopes). */
export function replayNoise(tensors: readonly T.Tensor[]): NoiseFn {
  let i = 0;
  return (shape) => {
    if (i >= tensors.length) throw new RangeError(`replayNoise: only ${tensors.length} noise tensors were given, a ${i + 1}th was requested`);
    const t = tensors[i++];
    if (!T.sameShape(t.shape, shape)) throw new RangeError(`replayNoise: noise tensor ${i - 1} has shape [${t.shape}], the sampler needs [${shape}]`);
    return T.mulScalar(T.cast(t, 'float32'), 1); // a copy
  };
}
