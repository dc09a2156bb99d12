// Reverse-mode automatic differentiation over the dynamic graph that ops record as they run.
//
// An op computes its output with kernels, then calls `record(out, name, inputs, backward)`. When
// gradients are enabled and some input requires them, the output gets a GradNode whose closure maps
// the output gradient to input gradients (computed with ops, under noGrad). `backward(loss)` walks the
// graph in reverse topological order, sums gradients per tensor, accumulates into leaves' `.grad`, and
// frees the graph (closures and saved tensors) unless retainGraph is set.

import { fmt, sameShape } from './shape.js';
import { keep, Tensor, type GradNode } from './tensor.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn with graph recording off (inference, optimizer updates, backward closures). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op on these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Attach a grad node to `out` if any input requires grad. Returns `out`. */
export function record(
  out: Tensor,
  name: string,
  inputs: (Tensor | null | undefined)[],
  backward: (grad: Tensor) => (Tensor | null)[],
): Tensor {
  if (!needsGrad(...inputs)) return out;
  out.requiresGrad = true;
  out.gradFn = { name, inputs: inputs.map((t) => t ?? null), backward };
  return out;
}

/** A leaf that requires grad (a parameter, or an input of a gradient check). */
export function requireGrad<T extends Tensor>(t: T): T {
  if (t.gradFn) throw new Error(`requireGrad: ${t} is not a leaf (it was produced by ${t.gradFn.name})`);
  t.requiresGrad = true;
  return t;
}

export interface BackwardOptions {
  /** Seed gradient (required when the output is not a scalar). */
  grad?: Tensor;
  retainGraph?: boolean;
}

// Set by ops/index at load time so that autograd does not import the ops layer (no cycle).
let addFn: ((a: Tensor, b: Tensor) => Tensor) | null = null;
let sumToFn: ((g: Tensor, shape: readonly number[]) => Tensor) | null = null;
let onesLikeFn: ((t: Tensor) => Tensor) | null = null;
export function installAutogradOps(ops: {
  add: (a: Tensor, b: Tensor) => Tensor;
  sumTo: (g: Tensor, shape: readonly number[]) => Tensor;
  onesLike: (t: Tensor) => Tensor;
}): void {
  addFn = ops.add;
  sumToFn = ops.sumTo;
  onesLikeFn = ops.onesLike;
}

/** Called with each leaf once its gradient of the current backward pass is complete (set by withGradReadyHook). */
let gradReadyHook: ((leaf: Tensor) => void) | null = null;

/**
 * Run fn with a hook that every backward pass inside it calls as soon as a leaf's gradient is final —
 * the point where data-parallel training can start reducing it while the rest of the pass runs.
 */
export function withGradReadyHook<R>(hook: (leaf: Tensor) => void, fn: () => R): R {
  const prev = gradReadyHook;
  gradReadyHook = hook;
  try {
    return fn();
  } finally {
    gradReadyHook = prev;
  }
}

export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  if (root.disposed) throw new Error(`backward: ${root} was disposed`);
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no parameter or input with requiresGrad reached it)`);
  let seed = opts.grad;
  if (!seed) {
    if (root.size !== 1) {
      throw new Error(`backward: output of shape ${fmt(root.shape)} is not a scalar; pass a seed gradient of the same shape`);
    }
    seed = onesLikeFn!(root);
  } else if (!sameShape(seed.shape, root.shape)) {
    throw new RangeError(`backward: seed gradient ${fmt(seed.shape)} does not match output ${fmt(root.shape)}`);
  }

  // Topological order (iterative DFS: UNets are deep enough to overflow a recursive one).
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const node = top[0].gradFn;
    const inputs = node ? node.inputs : [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next && next.requiresGrad && next.disposed) {
        // Disposing drops a tensor's grad node, so walking on would silently treat it as a leaf.
        throw new Error(`backward: ${next} (an input of ${node!.name}) was disposed before backward; ` +
          'call backward inside the tidy() that built the graph, or return the output from it');
      }
      if (next && next.requiresGrad && !visited.has(next)) {
        visited.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }

  const grads = new Map<Tensor, Tensor>();
  grads.set(root, seed);
  const prevMode = isGradEnabled();
  gradEnabled = false;
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      const node: GradNode | null = t.gradFn;
      if (!node) {
        // Leaf: accumulate into .grad (kept out of tidy scopes; it belongs to the tensor).
        // A fresh Tensor object, so that leaves never share one gradient object with the graph.
        const acc = t.grad ? addFn!(t.grad, g) : g.view_(g.shape, g.strides, g.offset);
        if (t.grad) t.grad.dispose();
        t.grad = keep(acc);
        gradReadyHook?.(t);
        continue;
      }
      if (!node.backward) throw new Error(`backward: the graph through ${node.name} was already freed (pass retainGraph: true to backward twice)`);
      const ins = node.backward(g);
      if (ins.length !== node.inputs.length) throw new Error(`backward: ${node.name} returned ${ins.length} gradients for ${node.inputs.length} inputs`);
      for (let k = 0; k < ins.length; k++) {
        const inp = node.inputs[k];
        let gi = ins[k];
        if (!inp || !inp.requiresGrad || !gi) continue;
        if (!sameShape(gi.shape, inp.shape)) gi = sumToFn!(gi, inp.shape);
        if (!sameShape(gi.shape, inp.shape)) {
          throw new Error(`backward: ${node.name} produced a gradient ${fmt(gi.shape)} for an input of shape ${fmt(inp.shape)}`);
        }
        const prev = grads.get(inp);
        grads.set(inp, prev ? addFn!(prev, gi) : gi);
      }
      if (t !== root) grads.delete(t);
      if (!opts.retainGraph) {
        node.backward = null;
        node.inputs = [];
        t.gradFn = null;
      }
    }
  } finally {
    gradEnabled = prevMode;
  }
}
