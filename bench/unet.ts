// UNet forward bench case (filled in below once the torch twin exists).
import type * as T from '../src/engine/index.js';
import type { BenchCase } from './run.js';

export async function unetCase(_gen: T.Generator): Promise<BenchCase | null> {
  return null;
}
