// Times one ONNX model in onnxruntime-node (CPU execution provider, all graph optimisations, `threads`
// intra-op threads, one inter-op thread), for bench/ort.ts. Inputs come from the model's .json side file:
// float inputs uniform in [−0.5, 0.5) from a fixed seed, int64 inputs (timesteps) 500.
// Usage: node ort_run.mjs ORT_DIR MODEL.onnx THREADS REPS WARMUP  →  {"median_ms", "min_ms", "ort"}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const [ortDir, file, threads, reps, warmup] = process.argv.slice(2);
const ort = createRequire(`${ortDir}/`)('onnxruntime-node');
const meta = JSON.parse(readFileSync(`${file}.json`, 'utf8'));
const session = await ort.InferenceSession.create(file, {
  executionProviders: ['cpu'], intraOpNumThreads: Number(threads), interOpNumThreads: 1, graphOptimizationLevel: 'all',
});
let seed = 1;
const uniform = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed / 2 ** 32 - 0.5);
const feeds = {};
for (const { name, shape, dtype } of meta.inputs) {
  const size = shape.reduce((a, b) => a * b, 1);
  feeds[name] = dtype === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from({ length: size }, () => 500n), shape)
    : new ort.Tensor('float32', Float32Array.from({ length: size }, uniform), shape);
}
for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
const times = [];
for (let i = 0; i < Number(reps); i++) {
  const t0 = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ median_ms: times[times.length >> 1], min_ms: times[0], ort: ort.env.versions.node }));
