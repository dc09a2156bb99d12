// Data-parallel scaling on this machine: `ldm train` of the MNIST LDM config (model_channels 32, cached
// latents) for a few steps with 1, 2 and 4 MPI ranks, one kernel thread per rank, per-rank batch fixed
// (weak scaling: the global batch grows with the ranks). Prints steps/s, samples/s and the share of each
// step spent waiting for gradient all-reduces after backward.
//   node --import tsx bench/distributed.ts [--steps 12] [--batch 32] [--ranks 1,2,4]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const steps = Number(arg('steps', '12'));
const batch = Number(arg('batch', '32'));
const ranks = arg('ranks', '1,2,4').split(',').map(Number);
const root = path.resolve(import.meta.dirname, '..');
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', LDM_NUM_THREADS: '1' };

console.log(`MNIST LDM (model_channels 32), ${batch} samples per rank per step, ${steps} steps (after the latent cache), 1 thread per rank, ${os.cpus().length} cores`);
console.log('ranks  steps/s  samples/s  all-reduce wait  issue  gradient values');
for (const np of ranks) {
  const logdir = mkdtempSync(path.join(os.tmpdir(), 'ldm-dpbench-'));
  const args = [path.join(root, 'bin/ldm.mjs'), 'train', '--config', path.join(root, 'configs/mnist/ldm-cond-kl-f4.yaml'), '--logdir', logdir, '--max-steps', String(steps),
    '--image-every', '0', '--ckpt-every', '0', `data.params.batch_size=${batch}`, 'model.params.unet_config.params.model_channels=32'];
  const argv = np === 1 ? [process.execPath, ...args] : ['mpirun', '--oversubscribe', '-np', String(np), process.execPath, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, env, encoding: 'utf8' });
  rmSync(logdir, { recursive: true, force: true });
  const out = `${r.stdout}${r.stderr}`;
  const fin = /finished at step \d+ \((\d+) steps in ([\d.]+) s/.exec(out);
  if (r.status !== 0 || !fin) {
    console.log(`${np}: failed (${r.status})\n${out.slice(-2000)}`);
    continue;
  }
  const secs = Number(fin[2]), n = Number(fin[1]);
  const dp = /(\d+) gradient bucket\(s\) of (\d+) values; waiting on all-reduce ([\d.]+) s, issuing ([\d.]+) s/.exec(out);
  const wait = dp ? Number(dp[3]) : 0, issue = dp ? Number(dp[4]) : 0;
  console.log(`${String(np).padStart(5)}  ${(n / secs).toFixed(3).padStart(7)}  ${((n * batch * np) / secs).toFixed(1).padStart(9)}  ${((100 * wait) / secs).toFixed(1).padStart(14)} %  ${((100 * issue) / secs).toFixed(1).padStart(4)} %  ${dp ? dp[2] : '-'}`);
}
