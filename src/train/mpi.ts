// The process group of a data-parallel run launched by `mpirun -np N ldm train …`: rank, size and the
// collectives of Open MPI (native/mpi, built at install when `mpicc` is present).
//
// A run is distributed when MPI launched it (Open MPI sets OMPI_COMM_WORLD_SIZE; PMI-based launchers set
// PMI_SIZE) or when asked with --distributed; without the addon that is one clear error.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface MpiAddon {
  init(): { rank: number; size: number; library: string };
  allreduce(buf: Float32Array | Float64Array, op: 'sum' | 'mean'): void;
  iallreduce(buf: Float32Array | Float64Array, op: 'sum' | 'mean'): number;
  test(handle: number): boolean;
  wait(handle: number): void;
  broadcast(buf: ArrayBufferView, root: number): void;
  barrier(): void;
  finalize(): void;
  abort(code: number): void;
}

/** Collectives over every rank of the run. The single-process group does nothing (size 1). */
export interface ProcessGroup {
  readonly rank: number;
  readonly size: number;
  /** What runs the collectives ("Open MPI v4.1.4 …", or "single process"). */
  readonly library: string;
  /** In-place all-reduce. */
  allreduce(buf: Float32Array | Float64Array, op: 'sum' | 'mean'): void;
  /** Non-blocking all-reduce: returns a handle for wait(); test() lets it progress. */
  iallreduce(buf: Float32Array | Float64Array, op: 'sum' | 'mean'): number;
  test(handle: number): boolean;
  wait(handle: number): void;
  /** In-place broadcast of the root's bytes. */
  broadcast(buf: ArrayBufferView, root?: number): void;
  barrier(): void;
  finalize(): void;
}

export const INSTALL_HINT = 'apt-get install openmpi-bin libopenmpi-dev, then rebuild the addon with `npm rebuild ldm-ts` (or `node scripts/build-mpi.mjs` in a checkout)';

export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return Number(env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE ?? 1) > 1;
}

function addonPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/train (checkout) or dist/train (package): the addon lives in native/mpi/build at the package root.
  return path.resolve(here, '..', '..', 'native', 'mpi', 'build', 'Release', 'ldm_mpi.node');
}

let world: ProcessGroup | null = null;

export const singleProcess: ProcessGroup = {
  rank: 0,
  size: 1,
  library: 'single process',
  allreduce: () => {},
  iallreduce: () => 0,
  test: () => true,
  wait: () => {},
  broadcast: () => {},
  barrier: () => {},
  finalize: () => {},
};

/** Initialise MPI once per process and return the world group. */
export function initProcessGroup(): ProcessGroup {
  if (world) return world;
  const file = addonPath();
  if (!existsSync(file)) throw new Error(`distributed training needs the MPI addon (${file} is missing): ${INSTALL_HINT}`);
  let m: MpiAddon;
  try {
    m = createRequire(import.meta.url)(file) as MpiAddon;
  } catch (e) {
    throw new Error(`distributed training: the MPI addon ${file} does not load (${(e as Error).message.split('\n')[0]}): ${INSTALL_HINT}`);
  }
  const info = m.init();
  // MPI must be finalized before the process ends, or mpirun reports an abnormal termination.
  process.once('exit', () => {
    if (world) world.finalize();
  });
  world = {
    rank: info.rank,
    size: info.size,
    library: info.library,
    allreduce: (b, op) => m.allreduce(b, op),
    iallreduce: (b, op) => m.iallreduce(b, op),
    test: (h) => m.test(h),
    wait: (h) => m.wait(h),
    broadcast: (b, root = 0) => m.broadcast(b, root),
    barrier: () => m.barrier(),
    finalize: () => {
      m.finalize();
      world = null;
    },
  };
  return world;
}

/** The group for this process: MPI when launched by mpirun (or `distributed` is true), else single-process. */
export function processGroup(distributed?: boolean): ProcessGroup {
  if (distributed === false) return singleProcess;
  if (distributed || launchedByMpi()) return initProcessGroup();
  return singleProcess;
}
