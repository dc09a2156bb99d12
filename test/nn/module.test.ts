import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/engine/index.js';
import { Buffer, Layer, Module, ModuleList, Parameter, Sequential, formatLoadReport } from '../../src/nn/index.js';

// Hand-built modules (no layer classes), so these tests only exercise the Module tree itself.
class Leaf extends Layer {
  weight = new Parameter(T.ones([2, 3]));
  bias: Parameter | null;
  running = new Buffer(T.zeros([3]));
  scratch = new Buffer(T.zeros([5]), false); // used but not saved
  _cache = new Parameter(T.zeros([7])); // private: never part of the tree
  constructor(bias = true) {
    super();
    this.bias = bias ? new Parameter(T.zeros([2])) : null;
  }
  forward(x: T.Tensor): T.Tensor {
    return T.linear(x, this.weight, this.bias);
  }
}

class Block extends Module {
  c = new Leaf();
  layers = new ModuleList([new Leaf(false), new Leaf()]);
}

class Net extends Module {
  a = new Module();
  seq = new Sequential([new Leaf(), new Leaf()]);
  constructor() {
    super();
    (this.a as Module & { b: ModuleList<Block> }).b = new ModuleList([new Block()]);
  }
}

function blockOf(net: Net): Block {
  return (net.a as Module & { b: ModuleList<Block> }).b[0];
}

class Scale extends Layer {
  constructor(readonly k: number) {
    super();
  }
  forward(x: T.Tensor): T.Tensor {
    return T.mul(x, this.k);
  }
}

test('Sequential applies its layers in order; parameter-free entries keep their index', () => {
  const seq = new Sequential([new Scale(2), new Leaf(), new Scale(-1)]);
  assert.deepEqual([...seq.stateDict().keys()], ['1.weight', '1.bias', '1.running']);
  assert.equal(seq.length, 3);
  assert.equal(seq.at(-1), seq[2]);
  assert.deepEqual(seq.forward(T.tensor([[1, 2, 3]])).toArray(), [-12, -12]);
});

test('stateDict keys compose with dots, ModuleList indices, skip null/private/non-persistent', () => {
  const net = new Net();
  const keys = [...net.stateDict().keys()];
  assert.deepEqual(keys, [
    'a.b.0.c.weight', 'a.b.0.c.bias',
    'a.b.0.layers.0.weight',
    'a.b.0.layers.1.weight', 'a.b.0.layers.1.bias',
    'seq.0.weight', 'seq.0.bias', 'seq.1.weight', 'seq.1.bias',
    'a.b.0.c.running', 'a.b.0.layers.0.running', 'a.b.0.layers.1.running', 'seq.0.running', 'seq.1.running',
  ]);
  // Non-persistent buffers are still buffers of the module.
  assert.ok([...net.namedBuffers()].some(([k]) => k === 'seq.1.scratch'));
  assert.ok(![...net.stateDict().keys()].some((k) => k.includes('scratch') || k.includes('_cache')));
  // Parameter count: 5 leaves with a 2×3 weight, 4 of them with a bias of 2.
  assert.equal(net.numParameters(), 5 * 6 + 4 * 2);
  assert.equal(net.parameters().length, 9);
  assert.deepEqual([...net.namedModules()].map(([k]) => k), [
    '', 'a', 'a.b', 'a.b.0', 'a.b.0.c', 'a.b.0.layers', 'a.b.0.layers.0', 'a.b.0.layers.1', 'seq', 'seq.0', 'seq.1',
  ]);
  // stateDict shares storage with the module (no copy).
  assert.equal(net.stateDict().get('seq.1.weight')!.storage, (net.seq[1] as Leaf).weight.storage);
});

test('loadStateDict: copies values, converts dtypes, and reports missing / unexpected / mismatched keys precisely', () => {
  const net = new Net();
  const src = new Map<string, T.Tensor>();
  for (const [k, t] of net.stateDict()) src.set(k, T.full([...t.shape], 0.5, 'float64'));
  net.loadStateDict(src);
  assert.deepEqual((net.seq[0] as Leaf).weight.toArray(), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  assert.equal((net.seq[0] as Leaf).weight.dtype, 'float32');

  const bad = new Map(src);
  bad.delete('seq.1.bias');
  bad.delete('a.b.0.c.running');
  bad.set('seq.2.weight', T.zeros([2, 3]));
  bad.set('a.b.0.layers.0.weight', T.zeros([3, 2]));
  let msg = '';
  try {
    net.loadStateDict(bad, { source: 'model.safetensors' });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.equal(
    msg,
    [
      'cannot load model.safetensors:',
      '  2 missing key(s): seq.1.bias, a.b.0.c.running',
      '  1 unexpected key(s): seq.2.weight',
      '  shape mismatch at a.b.0.layers.0.weight: model has [2,3], file has [3,2]',
    ].join('\n'),
  );
  // Strict loading is all-or-nothing: nothing was written.
  assert.deepEqual((net.seq[0] as Leaf).weight.toArray(), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);

  // Non-strict: the report lists the same keys, and every loadable key is loaded.
  for (const t of bad.values()) if (t.dtype === 'float64') (t.data as Float64Array).fill(2);
  const r = net.loadStateDict(bad, { strict: false });
  assert.deepEqual(r.missing, ['seq.1.bias', 'a.b.0.c.running']);
  assert.deepEqual(r.unexpected, ['seq.2.weight']);
  assert.deepEqual(r.mismatched, [{ key: 'a.b.0.layers.0.weight', expected: [2, 3], got: [3, 2] }]);
  assert.deepEqual((net.seq[0] as Leaf).weight.toArray(), [2, 2, 2, 2, 2, 2]);
  assert.deepEqual((net.seq[1] as Leaf).bias!.toArray(), [0.5, 0.5]); // missing: untouched
  assert.deepEqual(blockOf(net).layers[0].weight.toArray(), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]); // mismatched: untouched

  // Long lists are truncated with a count.
  const many = { missing: Array.from({ length: 15 }, (_, i) => `k${i}`), unexpected: [], mismatched: [] };
  assert.match(formatLoadReport(many, 'x'), /15 missing key\(s\): k0, k1, .*k11, … \(3 more\)$/);
});

test('train()/eval() propagate to every sub-module; zeroGrad drops gradients', () => {
  const net = new Net();
  assert.ok([...net.namedModules()].every(([, m]) => m.training));
  net.eval();
  assert.ok([...net.namedModules()].every(([, m]) => !m.training));
  net.seq.train();
  assert.equal(net.seq[1].training, true);
  assert.equal(net.a.training, false);
  net.train();
  assert.ok([...net.namedModules()].every(([, m]) => m.training));

  T.sum(net.seq[0].forward(T.ones([4, 3]))).backward();
  assert.deepEqual((net.seq[0] as Leaf).weight.grad!.toArray(), [4, 4, 4, 4, 4, 4]);
  assert.deepEqual((net.seq[0] as Leaf).bias!.grad!.toArray(), [4, 4]);
  net.zeroGrad();
  assert.equal((net.seq[0] as Leaf).weight.grad, null);
});
