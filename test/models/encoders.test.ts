// Conditioning encoders: BERTEmbedder parity with the reference fixture, ClassEmbedder, SpatialRescaler,
// and the WordPiece tokenizer's bert-base-uncased rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/engine/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { buildFromConfigFile } from '../../src/loader/targets.js';
import { BERTEmbedder, SpatialRescaler, WordPieceTokenizer, encoderFromParams, normalizeBert, preTokenizeBert } from '../../src/models/encoders/index.js';
import { assertClose } from '../helpers/gradcheck.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const golden = resolve(repoRoot, '../shared/golden');
const bertDir = join(golden, 'bert_embedder');

test('BERTEmbedder parity with the reference (token ids given)', { skip: existsSync(bertDir) ? false : `fixtures not found at ${bertDir} (shared/golden is absent)` }, () => {
  const model = buildFromConfigFile<BERTEmbedder>(join(bertDir, 'config.yaml')).eval();
  assert.ok(model instanceof BERTEmbedder);
  model.loadStateDict(readSafetensors(join(bertDir, 'weights.safetensors')).tensors, { source: 'bert_embedder/weights.safetensors' });
  const io = readSafetensors(join(bertDir, 'io.safetensors')).tensors;
  const out = T.noGrad(() => model.forward(io.get('tokens')!));
  const ref = io.get('out')!;
  assert.deepEqual(out.shape, ref.shape);
  assertClose(out.toArray(), ref.toArray(), 1e-4, 'bert_embedder out');
  let num = 0, den = 0;
  const a = out.toArray(), b = ref.toArray();
  for (let i = 0; i < a.length; i++) (num += (a[i] - b[i]) ** 2), (den += b[i] ** 2);
  console.log(`bert_embedder: rel-L2 error ${(Math.sqrt(num / den)).toExponential(3)}`);
  assert.throws(() => model.forward(['a photo']), /use_tokenizer: false/);
});

// A small vocabulary in bert-base-uncased's layout: [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103.
function smallVocab(): string[] {
  const v = Array.from({ length: 110 }, (_, i) => `[unused${i}]`);
  v[0] = '[PAD]';
  v[100] = '[UNK]';
  v[101] = '[CLS]';
  v[102] = '[SEP]';
  v[103] = '[MASK]';
  v.push('a', 'photo', 'of', 'cat', 'un', '##aff', '##able', ',', '!', '.', 'cafe', 'the', '##s', 'dog', '"', '$', '的', 'hello', '##a', 'naive');
  return v;
}
const id = (tok: string) => smallVocab().indexOf(tok);

test('WordPiece tokenizer: bert-base-uncased normalisation, punctuation split, greedy longest-match pieces', () => {
  const tok = new WordPieceTokenizer(smallVocab(), 12);
  assert.equal(normalizeBert('Café\tNAÏVE\u0000\u200b x'), 'cafe naive x');
  assert.deepEqual(preTokenizeBert('hello,world! $5 "ok"'), ['hello', ',', 'world', '!', '$', '5', '"', 'ok', '"']);
  assert.equal(normalizeBert('的猫'), ' 的  猫 ');
  assert.equal(normalizeBert('ΟΔΟΣ'), 'οδοσ'); // per-character lower-casing: no final sigma
  assert.deepEqual(tok.tokenizeIds('unaffable'), [id('un'), id('##aff'), id('##able')]);
  assert.deepEqual(tok.tokenizeIds('A Photo of cats!'), [id('a'), id('photo'), id('of'), id('cat'), id('##s'), id('!')]);
  assert.deepEqual(tok.tokenizeIds('Café, NAÏVE.'), [id('cafe'), id(','), id('naive'), id('.')]);
  // a word without a full segmentation is one [UNK]; so is a word longer than 100 characters
  assert.deepEqual(tok.tokenizeIds('unaffablex dog'), [100, id('dog')]);
  assert.deepEqual(tok.tokenizeIds('a'.repeat(101)), [100]);
  assert.deepEqual(tok.tokenizeIds('aa'), [id('a'), id('##a')]);
  // literal special tokens are kept whole (case-sensitive), lower-case ones are ordinary text
  assert.deepEqual(tok.tokenizeIds('a [MASK] dog'), [id('a'), 103, id('dog')]);
  assert.deepEqual(tok.tokenizeIds('[mask]').length, 3);
  // [CLS] … [SEP], padded with [PAD] = 0 to max_length, truncated to max_length − 2 pieces
  assert.deepEqual(tok.encode('a cat'), [101, id('a'), id('cat'), 102, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(tok.encode(''), [101, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const long = tok.encode('dog '.repeat(20));
  assert.equal(long.length, 12);
  assert.deepEqual(long, [101, ...new Array(10).fill(id('dog')), 102]);
  const batch = tok.encodeBatch(['a cat', 'dog']);
  assert.deepEqual(batch.shape, [2, 12]);
  assert.equal(batch.dtype, 'int64');
});

test('BERTEmbedder with a vocab.txt tokenizes text like the reference and embeds it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vocab-'));
  const vocab = join(dir, 'vocab.txt');
  writeFileSync(vocab, smallVocab().join('\n') + '\n');
  const m = new BERTEmbedder(16, 1, { vocabSize: smallVocab().length, maxSeqLen: 8, vocabFile: vocab, gen: new T.Generator(3) }).eval();
  const ids = m.tokenize(['a photo of a cat', 'hello']);
  assert.deepEqual(ids.toArray(), [101, id('a'), id('photo'), id('of'), id('a'), id('cat'), 102, 0, 101, id('hello'), 102, 0, 0, 0, 0, 0]);
  const z = T.noGrad(() => m.forward(['a photo of a cat', 'hello']));
  assert.deepEqual(z.shape, [2, 8, 16]);
  const z2 = T.noGrad(() => m.forward(ids));
  assert.deepEqual(z.toArray(), z2.toArray());
  // pre-norm output: the final LayerNorm (weight 1, bias 0) gives zero-mean rows
  const row = z.toArray().slice(0, 16);
  assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) / 16) < 1e-5);
  const noVocab = new BERTEmbedder(16, 1, { vocabSize: 120, maxSeqLen: 8 });
  assert.throws(() => noVocab.forward('a cat'), /vocab\.txt/);
});

test('ClassEmbedder: labels from a batch dict → [B, 1, embed_dim] rows of the table', () => {
  const m = encoderFromParams('ClassEmbedder', { embed_dim: 4, n_classes: 5, key: 'class_label' }, { gen: new T.Generator(1) });
  const y = T.tensor([3, 0], [2], 'int64');
  const c = m.forward({ class_label: y });
  assert.deepEqual(c.shape, [2, 1, 4]);
  const W = (m.embedding as unknown as { weight: T.Tensor }).weight.toArray();
  assert.deepEqual(c.toArray(), [...W.slice(12, 16), ...W.slice(0, 4)]);
  assert.throws(() => m.forward({ class: y }), /no entry "class_label"/);
  assert.throws(() => m.forward(T.tensor([5], [1], 'int64')), /outside/);
});

test('SpatialRescaler: n_stages × bilinear ×0.5 (= 2×2 means), then a bias-free 1×1 channel map', () => {
  const m = encoderFromParams('SpatialRescaler', { n_stages: 2, in_channels: 2, out_channels: 3, multiplier: 0.5, method: 'bilinear' }, { gen: new T.Generator(2) });
  assert.deepEqual([...m.stateDict().keys()], ['channel_mapper.weight']);
  const x = T.randn([1, 2, 8, 6], new T.Generator(5));
  const y = m.forward(x);
  assert.deepEqual(y.shape, [1, 3, 2, 1]);
  // reference by hand: each stage averages 2×2 blocks (8×6 → 4×3 → 2×1, the odd column dropped)
  const xv = x.toArray();
  const at = (c: number, i: number, j: number) => xv[c * 48 + i * 6 + j];
  const W = (m.channel_mapper as unknown as { weight: T.Tensor }).weight.toArray(); // [3, 2, 1, 1]
  const expected: number[] = [];
  for (let o = 0; o < 3; o++) {
    for (let i = 0; i < 2; i++) {
      let s = 0;
      for (let c = 0; c < 2; c++) {
        let v = 0;
        for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) v += at(c, 4 * i + a, b);
        s += W[o * 2 + c] * (v / 16);
      }
      expected.push(s);
    }
  }
  assertClose(y.toArray(), expected, 1e-5, 'SpatialRescaler');
  const nearest = new SpatialRescaler(1, 'nearest', 0.5, 2, null);
  assert.deepEqual(nearest.forward(x).toArray().slice(0, 3), [at(0, 0, 0), at(0, 0, 2), at(0, 0, 4)]);
});
