import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../src/engine/index.js';
import {
  BatchNorm2d, Conv2d, Dropout, Embedding, GELU, GroupNorm, Identity, LayerNorm, LeakyReLU, Linear, Module, ReLU, Sequential, SiLU, Sigmoid, Tanh, init,
} from '../../src/nn/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { assertClose, gradcheck, rnd } from '../helpers/gradcheck.js';

const golden = path.resolve(import.meta.dirname, '../..', '../shared/golden');

function stats(xs: number[]): { mean: number; std: number; maxAbs: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  return { mean, std: Math.sqrt(v), maxAbs: Math.max(...xs.map(Math.abs)) };
}

test('Linear: PyTorch default init U(±1/√fan_in), seeded, keys, forward = x Wᵀ + b, gradients', () => {
  const lin = new Linear(300, 200, true, { gen: new T.Generator(7) });
  assert.deepEqual([...lin.stateDict().keys()], ['weight', 'bias']);
  assert.deepEqual(lin.weight.shape, [200, 300]);
  const bound = 1 / Math.sqrt(300);
  const w = stats(lin.weight.toArray()), b = stats(lin.bias!.toArray());
  assert.ok(w.maxAbs <= bound && w.maxAbs > 0.99 * bound, `weight range ${w.maxAbs} vs ${bound}`);
  assert.ok(Math.abs(w.std - bound / Math.sqrt(3)) < 0.01 * bound, `uniform std ${w.std}`);
  assert.ok(Math.abs(w.mean) < 0.01 * bound);
  assert.ok(b.maxAbs <= bound && b.maxAbs > 0.9 * bound);
  // Same seed, same weights; the default generator follows T.manualSeed.
  assert.deepEqual(new Linear(300, 200, true, { gen: new T.Generator(7) }).weight.toArray(), lin.weight.toArray());
  T.manualSeed(3);
  const a1 = new Linear(4, 3).weight.toArray();
  T.manualSeed(3);
  assert.deepEqual(new Linear(4, 3).weight.toArray(), a1);
  assert.equal(new Linear(4, 3, false).bias, null);
  assert.deepEqual([...new Linear(4, 3, false).stateDict().keys()], ['weight']);

  const small = new Linear(3, 2);
  (small.weight.data as Float32Array).set([1, 2, 3, -1, 0, 1]);
  (small.bias!.data as Float32Array).set([0.5, -0.5]);
  assert.deepEqual(small.forward(T.tensor([[1, 1, 1], [2, 0, -1]])).toArray(), [6.5, -0.5, -0.5, -3.5]);
  assert.deepEqual(small.forward(T.ones([2, 5, 3])).shape, [2, 5, 2]);
  assert.throws(() => small.forward(T.ones([2, 4])), /linear: input \[2, 4\] does not match weight \[2, 3\]/);

  const l64 = new Linear(3, 2, true, { dtype: 'float64' });
  gradcheck('Linear', (x, W, bb) => T.linear(x, W, bb), [rnd([4, 3], 1), l64.weight, l64.bias!]);
});

/** Direct convolution in float64 (the test's own reference). */
function naiveConv(x: T.Tensor, w: T.Tensor, b: T.Tensor | null, stride: number, [pt, , pl]: number[]): number[][][][] {
  const [N, C, H, W] = x.shape, [O, , kh, kw] = w.shape;
  const xs = x.toArray(), ws = w.toArray(), bs = b?.toArray();
  const Ho = Math.floor((H + 2 * pt - kh) / stride) + 1, Wo = Math.floor((W + 2 * pl - kw) / stride) + 1;
  const out: number[][][][] = [];
  for (let n = 0; n < N; n++) {
    out.push([]);
    for (let o = 0; o < O; o++) {
      out[n].push([]);
      for (let i = 0; i < Ho; i++) {
        const row: number[] = [];
        for (let j = 0; j < Wo; j++) {
          let s = bs ? bs[o] : 0;
          for (let c = 0; c < C; c++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
            const y = i * stride - pt + u, z = j * stride - pl + v;
            if (y >= 0 && y < H && z >= 0 && z < W) s += xs[((n * C + c) * H + y) * W + z] * ws[((o * C + c) * kh + u) * kw + v];
          }
          row.push(s);
        }
        out[n][o].push(row);
      }
    }
  }
  return out;
}

test('Conv2d: init bound 1/√(C·k·k), padding forms, stride, forward against a direct convolution', () => {
  const conv = new Conv2d(16, 8, 3, { padding: 1, gen: new T.Generator(1) });
  assert.deepEqual(conv.weight.shape, [8, 16, 3, 3]);
  assert.deepEqual([...conv.stateDict().keys()], ['weight', 'bias']);
  const bound = 1 / Math.sqrt(16 * 9);
  const w = stats(conv.weight.toArray());
  assert.ok(w.maxAbs <= bound && w.maxAbs > 0.98 * bound, `conv weight range ${w.maxAbs} vs ${bound}`);
  assert.ok(stats(conv.bias!.toArray()).maxAbs <= bound);
  assert.equal(new Conv2d(2, 3, 1, { bias: false }).bias, null);
  assert.deepEqual(new Conv2d(2, 3, 3, { padding: [1, 2] }).padding, [1, 1, 2, 2]);

  const x = rnd([2, 3, 7, 6], 11);
  for (const [stride, padding] of [[1, 1], [2, 1], [2, 0]] as const) {
    const c = new Conv2d(3, 4, 3, { stride, padding, dtype: 'float64', gen: new T.Generator(stride + padding) });
    const y = c.forward(x);
    const ref = naiveConv(x, c.weight, c.bias, stride, [padding, padding, padding, padding]);
    assert.deepEqual(y.shape, [ref.length, ref[0].length, ref[0][0].length, ref[0][0][0].length]);
    assertClose(y.toArray(), ref.flat(3) as number[], 1e-12, `conv s${stride} p${padding}`);
  }
  const k2 = new Conv2d(3, 2, [2, 3], { padding: [1, 0], dtype: 'float64' });
  assert.deepEqual(k2.forward(x).shape, [2, 2, 8, 4]);
  assert.deepEqual(new Conv2d(3, 2, 3, { stride: [2, 1], padding: 1, dtype: 'float64' }).forward(x).shape, [2, 2, 4, 6]);
  assert.throws(() => new Conv2d(3, 2, 3, { stride: 0 }), /Conv2d: stride must be a positive integer, got 0/);
  assert.throws(() => conv.forward(T.ones([1, 3, 4, 4])), /Conv2d\(16→8\): expected input \[N, 16, H, W\], got \[1,3,4,4\]/);
});

test('GroupNorm / LayerNorm: ones/zeros init, normalised output, affine=false has no parameters', () => {
  const gn = new GroupNorm(4, 8, 1e-6);
  assert.deepEqual([...gn.stateDict().keys()], ['weight', 'bias']);
  assert.deepEqual(gn.weight!.toArray(), new Array(8).fill(1));
  assert.deepEqual(gn.bias!.toArray(), new Array(8).fill(0));
  const x = T.add(T.mul(T.randn([2, 8, 5, 5], new T.Generator(2)), 3), 1);
  const y = gn.forward(x).reshape([2, 4, 50]).toArray();
  for (let g = 0; g < 8; g++) {
    const s = stats(y.slice(g * 50, (g + 1) * 50));
    assert.ok(Math.abs(s.mean) < 1e-5 && Math.abs(s.std - 1) < 1e-4, `group ${g}: mean ${s.mean} std ${s.std}`);
  }
  (gn.weight!.data as Float32Array).fill(2);
  (gn.bias!.data as Float32Array).fill(-1);
  const s2 = stats(gn.forward(x).toArray());
  assert.ok(Math.abs(s2.mean + 1) < 1e-4 && Math.abs(s2.std - 2) < 1e-3);
  assert.throws(() => new GroupNorm(3, 8), /GroupNorm: 8 channels cannot be split into 3 groups/);
  assert.equal([...new GroupNorm(2, 4, 1e-5, false).stateDict().keys()].length, 0);

  const ln = new LayerNorm(6);
  const z = ln.forward(T.randn([3, 6], new T.Generator(4))).toArray();
  for (let r = 0; r < 3; r++) {
    const s = stats(z.slice(r * 6, r * 6 + 6));
    assert.ok(Math.abs(s.mean) < 1e-5 && Math.abs(s.std - 1) < 1e-3, `row ${r}: ${s.mean} ${s.std}`);
  }
  assert.equal(new LayerNorm(6, 1e-5, false).numParameters(), 0);
  assert.throws(() => ln.forward(T.ones([2, 5])), /LayerNorm\(6\): last dim of input \[2,5\] is not 6/);
});

test('Embedding: N(0,1) init, rows picked by int32 and int64 indices', () => {
  const e = new Embedding(100, 100, { gen: new T.Generator(5) });
  const s = stats(e.weight.toArray());
  assert.ok(Math.abs(s.mean) < 0.03 && Math.abs(s.std - 1) < 0.03, `N(0,1): ${s.mean} ${s.std}`);
  const small = new Embedding(4, 2);
  (small.weight.data as Float32Array).set([0, 1, 10, 11, 20, 21, 30, 31]);
  assert.deepEqual(small.forward(T.tensor([3, 0, 3], [3], 'int64')).toArray(), [30, 31, 0, 1, 30, 31]);
  const y = small.forward(T.tensor([[1, 2]], [1, 2], 'int32'));
  assert.deepEqual(y.shape, [1, 2, 2]);
  assert.deepEqual(y.toArray(), [10, 11, 20, 21]);
});

test('BatchNorm2d: PyTorch buffers, running statistics (momentum and cumulative), eval uses them', () => {
  const bn = new BatchNorm2d(2);
  assert.deepEqual([...bn.stateDict().keys()], ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  assert.equal(bn.num_batches_tracked!.dtype, 'int64');
  assert.deepEqual(bn.num_batches_tracked!.shape, []);
  assert.equal(bn.numParameters(), 4);
  // channel 0 values 1..8, channel 1 values all 5, over N=2, H=W=2
  const x = T.tensor([1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8, 5, 5, 5, 5], [2, 2, 2, 2]);
  const y = bn.forward(x);
  assert.equal(bn.num_batches_tracked!.item(), 1);
  // mean0 = 4.5, var0 = 5.25 (biased, used to normalise), unbiased = 6
  assertClose(bn.running_mean!.toArray(), [0.45, 0.5], 1e-6, 'running_mean');
  assertClose(bn.running_var!.toArray(), [0.9 + 0.6, 0.9], 1e-6, 'running_var');
  assert.ok(Math.abs(y.toArray()[0] - (1 - 4.5) / Math.sqrt(5.25 + 1e-5)) < 1e-5);
  bn.eval();
  const ye = bn.forward(x).toArray();
  assert.equal(bn.num_batches_tracked!.item(), 1, 'eval does not count batches');
  assert.ok(Math.abs(ye[0] - (1 - 0.45) / Math.sqrt(1.5 + 1e-5)) < 1e-5);

  const cum = new BatchNorm2d(2, 1e-5, null);
  cum.forward(x);
  cum.forward(T.mul(x, 3));
  // cumulative average of the batch means: (4.5 + 13.5) / 2
  assert.ok(Math.abs(cum.running_mean!.toArray()[0] - 9) < 1e-5);
  assert.equal(cum.num_batches_tracked!.item(), 2);
});

test('Dropout and activations', () => {
  const d = new Dropout(0.25, new T.Generator(9));
  const x = T.ones([10000]);
  const y = d.forward(x).toArray();
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / 10000 - 0.25) < 0.02, `dropped ${zeros}`);
  assert.ok(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
  d.eval();
  assert.equal(d.forward(x), x);
  assert.equal(new Dropout(0).forward(x), x);
  assert.equal([...new Sequential([new Dropout(0.1), new SiLU()]).stateDict().keys()].length, 0);

  const v = [-2, -0.5, 0, 1.5];
  const t = T.tensor(v);
  const check = (name: string, got: number[], f: (a: number) => number) =>
    got.forEach((g, i) => assert.ok(Math.abs(g - f(v[i])) < 1e-6, `${name}(${v[i]}) = ${g}`));
  check('SiLU', new SiLU().forward(t).toArray(), (a) => a / (1 + Math.exp(-a)));
  check('Sigmoid', new Sigmoid().forward(t).toArray(), (a) => 1 / (1 + Math.exp(-a)));
  check('Tanh', new Tanh().forward(t).toArray(), Math.tanh);
  check('LeakyReLU', new LeakyReLU(0.2).forward(t).toArray(), (a) => (a > 0 ? a : 0.2 * a));
  check('ReLU', new ReLU().forward(t).toArray(), (a) => Math.max(a, 0));
  check('GELU', new GELU().forward(T.tensor([-1])).toArray(), () => -0.15865525);
  assert.equal(new Identity().forward(t), t);
});

test('init: gains, fans, kaiming/xavier scales, strided fill', () => {
  assert.deepEqual(init.fans([8, 4, 3, 3]), { fanIn: 36, fanOut: 72 });
  assert.ok(Math.abs(init.calculateGain('leaky_relu', Math.sqrt(5)) - Math.sqrt(1 / 3)) < 1e-15);
  assert.equal(init.calculateGain('tanh'), 5 / 3);
  const t = T.empty([256, 400]);
  init.kaimingNormal_(t, { nonlinearity: 'relu', gen: new T.Generator(1) });
  assert.ok(Math.abs(stats(t.toArray()).std - Math.SQRT2 / 20) < 0.002);
  init.xavierUniform_(t, 1, new T.Generator(2));
  assert.ok(stats(t.toArray()).maxAbs <= Math.sqrt(6 / 656));
  const base = T.zeros([3, 4]);
  init.constant_(T.slice(base, 1, 1, 4, 2), 7);
  assert.deepEqual(base.toArray(), [0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7].map((v, i) => (i % 4 === 1 || i % 4 === 3 ? 7 : 0)));
  assert.throws(() => init.ones_(T.zeros([2], 'int32')), /init\.constant_: expected a float tensor, got int32/);
});

test('golden: a PatchGAN discriminator built from these layers matches PyTorch in train and eval mode', (t) => {
  const dir = path.join(golden, 'discriminator');
  if (!existsSync(path.join(dir, 'io.safetensors'))) {
    t.skip(`golden fixtures not found at ${dir}`);
    return;
  }
  // taming NLayerDiscriminator(input_nc=3, ndf=8, n_layers=2)
  const main = new Sequential([
    new Conv2d(3, 8, 4, { stride: 2, padding: 1 }), new LeakyReLU(0.2),
    new Conv2d(8, 16, 4, { stride: 2, padding: 1, bias: false }), new BatchNorm2d(16), new LeakyReLU(0.2),
    new Conv2d(16, 32, 4, { stride: 1, padding: 1, bias: false }), new BatchNorm2d(32), new LeakyReLU(0.2),
    new Conv2d(32, 1, 4, { stride: 1, padding: 1 }),
  ]);
  const D = new (class extends Module {
    main = main;
  })();
  D.loadStateDict(readSafetensors(path.join(dir, 'weights.safetensors')).tensors, { source: 'discriminator/weights.safetensors' });
  const io = readSafetensors(path.join(dir, 'io.safetensors')).tensors;
  // The fixture's state dict was saved after the training-mode call (num_batches_tracked = 1), so eval
  // mode on the loaded weights gives out_eval; the training-mode call uses batch statistics only.
  const bn = main[3] as BatchNorm2d;
  assert.equal(bn.num_batches_tracked!.item(), 1);
  D.eval();
  assertClose(main.forward(io.get('x')!).toArray(), io.get('out_eval')!.toArray(), 1e-4, 'out_eval');
  D.train();
  const rm = bn.running_mean!.toArray();
  assertClose(main.forward(io.get('x')!).toArray(), io.get('out_train')!.toArray(), 1e-4, 'out_train');
  assert.equal(bn.num_batches_tracked!.item(), 2);
  assert.notDeepEqual(bn.running_mean!.toArray(), rm);
});

test('skipInit: random fills are skipped for checkpoint loading, constants still applied', () => {
  const [l, g] = init.skipInit(() => [new Linear(3, 2), new GroupNorm(2, 4)] as const);
  assert.deepEqual(l.weight.toArray(), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(g.weight!.toArray(), [1, 1, 1, 1]);
  assert.ok(new Linear(3, 2).weight.toArray().some((v) => v !== 0));
});
