import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataLoader, MNIST, augDraw, epochOrder, splitDataset, type Batch } from '../../src/data/index.js';
import { Synthetic, SyntheticInMemory } from './synthetic.js';

const ids = (b: Batch) => b.image.toArray().filter((_, k) => k % 4 === 0);

test('epoch orders are permutations from the seed; augmentation draws depend only on (seed, epoch, index)', () => {
  const a = epochOrder(50, 7, 0, true), b = epochOrder(50, 7, 0, true), c = epochOrder(50, 7, 1, true);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...epochOrder(5, 7, 3, false)], [0, 1, 2, 3, 4]);
  assert.deepEqual(augDraw(1, 2, 3), augDraw(1, 2, 3));
  assert.notDeepEqual(augDraw(1, 2, 3), augDraw(1, 2, 4));
  for (const v of Object.values(augDraw(1, 2, 3))) assert.ok(v >= 0 && v < 1);
});

test('loader: epochs cover the set, the last batch is short unless dropLast, workers = main thread', async () => {
  const viaWorkers = new DataLoader(new Synthetic(10), { batchSize: 4, seed: 3, augment: true, workers: 1 });
  const inline = new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 3, augment: true });
  const sizes: number[] = [];
  const epoch0: number[] = [];
  for (let k = 0; k < 6; k++) {
    const [x, y] = [await viaWorkers.next(), await inline.next()];
    assert.deepEqual(x.image.toArray(), y.image.toArray());
    assert.deepEqual(x.indices, y.indices);
    assert.deepEqual(ids(x), x.indices);
    assert.deepEqual(x.class_label!.toArray(), x.indices.map((i) => i % 3));
    assert.equal(x.class_label!.dtype, 'int64');
    assert.deepEqual(x.caption, x.indices.map((i) => `c${i}`));
    // The draw of example i in epoch e is augDraw(seed, e, i).
    const e = k < 3 ? 0 : 1;
    x.indices.forEach((i, b) => assert.equal(x.image.toArray()[4 * b + 1], Math.fround(augDraw(3, e, i).cropX)));
    sizes.push(x.indices.length);
    if (k < 3) epoch0.push(...x.indices);
  }
  assert.deepEqual(sizes, [4, 4, 2, 4, 4, 2]);
  assert.deepEqual(epoch0.sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(viaWorkers.batchesPerEpoch, 3);
  await viaWorkers.close();
  const dl = new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 3, dropLast: true, augment: false });
  assert.equal(dl.batchesPerEpoch, 2);
  for (let k = 0; k < 5; k++) {
    const b = await dl.next();
    assert.equal(b.indices.length, 4);
    assert.deepEqual(b.image.toArray().filter((_, j) => j % 4 === 1), [-1, -1, -1, -1], 'no augmentation draw');
  }
  assert.deepEqual(dl.state().epoch, 2);
});

test('loader: a resumed loader (from a JSON round trip of state()) gives exactly the batches of an uninterrupted one', async () => {
  for (const [make, name] of [[() => new Synthetic(23), 'workers'], [() => new SyntheticInMemory(23), 'main thread']] as const) {
    const o = { batchSize: 5, seed: 11, augment: true, prefetch: 3, workers: 1 };
    // Two workers for the uninterrupted run, one for the interrupted ones: the batches do not depend on it.
    const full = new DataLoader(make(), { ...o, workers: 2 });
    const expected: number[][] = [];
    for (let k = 0; k < 14; k++) expected.push((await full.next()).image.toArray());
    await full.close();
    const first = new DataLoader(make(), o);
    const got: number[][] = [];
    for (let k = 0; k < 6; k++) got.push((await first.next()).image.toArray());
    const saved = JSON.parse(JSON.stringify(first.state()));
    await first.close();
    const resumed = DataLoader.restore(make(), o, saved);
    for (let k = 6; k < 14; k++) got.push((await resumed.next()).image.toArray());
    await resumed.close();
    assert.deepEqual(got, expected, name);
    // restore() on a running loader drops what it had prepared.
    const again = new DataLoader(make(), o);
    await again.next();
    again.restore(saved);
    assert.deepEqual((await again.next()).image.toArray(), expected[6], name);
    await again.close();
  }
});

test('loader: shards assemble only their rows; together they are the global batch, also after a resume', async () => {
  for (const [make, name] of [[() => new Synthetic(23), 'workers'], [() => new SyntheticInMemory(23), 'main thread']] as const) {
    const o = { batchSize: 6, seed: 5, augment: true, dropLast: true, workers: 1 };
    const global = new DataLoader(make(), o);
    const expected: Batch[] = [];
    for (let k = 0; k < 9; k++) expected.push(await global.next());
    await global.close();
    for (const size of [2, 3]) {
      const ranks = Array.from({ length: size }, (_, rank) => new DataLoader(make(), { ...o, shard: { rank, size } }));
      for (let k = 0; k < 9; k++) {
        if (k === 4) {
          // Every rank resumes from rank 0's saved state.
          const saved = JSON.parse(JSON.stringify(ranks[0].state()));
          for (let r = 0; r < size; r++) {
            await ranks[r].close();
            ranks[r] = DataLoader.restore(make(), { ...o, shard: { rank: r, size } }, saved);
          }
        }
        const parts = await Promise.all(ranks.map((l) => l.next()));
        parts.forEach((p) => assert.equal(p.image.shape[0], 6 / size, `${name}: rows per rank`));
        assert.deepEqual(parts.flatMap((p) => p.indices), expected[k].indices, `${name}, ${size} ranks, batch ${k}: indices`);
        assert.deepEqual(parts.flatMap((p) => p.image.toArray()), expected[k].image.toArray(), `${name}, ${size} ranks, batch ${k}: pixels (augmented)`);
        assert.deepEqual(parts.flatMap((p) => p.class_label!.toArray()), expected[k].class_label!.toArray());
      }
      await Promise.all(ranks.map((l) => l.close()));
    }
  }
  assert.throws(() => new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 0, dropLast: true, shard: { rank: 0, size: 3 } }), /batchSize that splits over 3 ranks \(got batchSize 4\)/);
  assert.throws(() => new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 0, shard: { rank: 0, size: 2 } }), /needs dropLast: true/);
  assert.throws(() => new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 0, dropLast: true, shard: { rank: 2, size: 2 } }), /0 ≤ rank < size, got \{"rank":2,"size":2\}/);
});

test('loader: restore refuses a state of other options; errors in a worker name the example', async () => {
  const l = new DataLoader(new SyntheticInMemory(10), { batchSize: 4, seed: 3 });
  const st = l.state();
  assert.throws(() => l.restore({ ...st, batchSize: 5 }), /saved loader had batchSize = 5, this one has 4/);
  assert.throws(() => l.restore({ ...st, length: 11 }), /length = 11/);
  assert.throws(() => l.restore({ ...st, position: 3 }), /invalid position/);
  assert.throws(() => new DataLoader(new Synthetic(3), { batchSize: 4, seed: 0, dropLast: true }), /3 examples, fewer than one batch of 4/);
  const bad = new DataLoader(new Synthetic(8, 5), { batchSize: 8, seed: 0, shuffle: false, workers: 1 });
  await assert.rejects(bad.next(), /synthetic: cannot read example 5/);
  await bad.close();
  await assert.rejects(bad.next(), /after close/);
});

// The buffer pool and V8's heaps settle within the first ~2,000 batches (RSS climbs ≈ 20 MiB, then stays put
// within a few MiB (allocator creep) over 20,000 more; a leak of one batch per step would add 250 MiB over the
// measured 4,000, one of 4 KiB per step 16 MiB.
test('loader over MNIST: 4,000 batches after warm-up keep RSS flat; batches are [B,1,32,32] in [-1,1]', async () => {
  const { train } = splitDataset(new MNIST(), { heldOut: 1000, seed: 0 });
  const l = new DataLoader(train, { batchSize: 16, seed: 0 });
  const t0 = performance.now();
  let rss0 = 0;
  const warm = 2000, total = 6000;
  for (let k = 0; k < total; k++) {
    const b = await l.next();
    if (k === 0) {
      assert.deepEqual(b.image.shape, [16, 1, 32, 32]);
      const v = b.image.toArray();
      assert.ok(Math.min(...v) >= -1 && Math.max(...v) <= 1);
    }
    b.image.dispose();
    b.class_label!.dispose();
    if (k === warm - 1) {
      global.gc?.();
      rss0 = process.memoryUsage().rss;
    }
  }
  global.gc?.();
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  const ms = (performance.now() - t0) / total;
  console.log(`# MNIST batch of 16 on the main thread: ${ms.toFixed(3)} ms; RSS change over ${total - warm} batches after ${warm} ${grown.toFixed(1)} MiB`);
  assert.ok(grown < 16, `RSS grew ${grown.toFixed(1)} MiB`);
  assert.equal(l.state().epoch, Math.floor((total * 16) / 9000));
});
