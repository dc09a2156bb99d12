// FrozenCLIPEmbedder's text transformer: parity with the clip_text fixture (every hidden state), the key
// list of SD v1's CLIP ViT-L/14 text model, the checkpoint variants real files have, causality.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/engine/index.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadCheckpointInto } from '../../src/loader/checkpoint.js';
import { instantiate } from '../../src/loader/targets.js';
import { FrozenCLIPEmbedder, causalMask, quickGelu, type ClipTextConfig } from '../../src/models/encoders/clip-text.js';
import { ClipTokenizer, bytesToUnicode } from '../../src/models/encoders/clip-tokenizer.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const shared = resolve(repoRoot, '../shared');
const fixture = join(shared, 'golden/clip_text');
const keysFile = join(shared, 'reference/keys/clip_vit_l14_text.tsv');

function relL2(a: T.Tensor, b: T.Tensor): number {
  const x = a.toArray(), y = b.toArray();
  let n = 0, d = 0;
  for (let i = 0; i < x.length; i++) (n += (x[i] - y[i]) ** 2), (d += y[i] ** 2);
  return Math.sqrt(n / d);
}

test('CLIP text transformer: out and every hidden state match the fixture (rel-L2 ≤ 1e-4)', { skip: existsSync(fixture) ? false : `fixture not found at ${fixture}` }, () => {
  const cfg = instantiate<FrozenCLIPEmbedder>(
    { target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder', params: { max_length: 77 }, text_config: { vocab_size: 49408, hidden_size: 64, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 } },
  );
  assert.ok(cfg instanceof FrozenCLIPEmbedder);
  const rep = loadCheckpointInto(cfg, join(fixture, 'weights.safetensors'), { stripPrefix: 'cond_stage_model.' });
  assert.deepEqual(rep.ignored, ['transformer.text_model.embeddings.position_ids']);
  const io = readSafetensors(join(fixture, 'io.safetensors')).tensors;
  const hidden: T.Tensor[] = [];
  const out = T.noGrad(() => cfg.eval().transformer.forward(io.get('tokens')!, hidden));
  assert.deepEqual(out.shape, [7, 77, 64]);
  assert.ok(relL2(out, io.get('out')!) <= 1e-4, `out ${relL2(out, io.get('out')!)}`);
  assert.equal(hidden.length, 3);
  hidden.forEach((h, k) => assert.ok(relL2(h, io.get(`hidden_states.${k}`)!) <= 1e-4, `hidden_states.${k}`));
});

test('the ViT-L/14 text model (no text_config) has exactly the keys and shapes of sd-v1-4.ckpt\'s cond_stage_model', { skip: existsSync(keysFile) ? false : `${keysFile} not found` }, () => {
  const m = instantiate<FrozenCLIPEmbedder>({ target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder' }, 'cond_stage_config', { meta: true });
  const ours = new Map([...m.stateDict()].map(([k, t]) => [`cond_stage_model.${k}`, `(${t.shape.join(', ')}${t.shape.length === 1 ? ',' : ''})`]));
  const ref = readFileSync(keysFile, 'utf8').trim().split('\n').map((l) => l.split('\t'));
  const expected = new Map(ref.filter(([k]) => !k.endsWith('position_ids')).map(([k, s]) => [k, s]));
  assert.deepEqual([...ours.keys()].sort(), [...expected.keys()].sort());
  for (const [k, s] of expected) assert.equal(ours.get(k), s, k);
  assert.equal(m.numParameters(), 123_060_480);
  assert.throws(() => instantiate({ target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder', params: { version: 'openai/clip-vit-base-patch32' } }), /only openai\/clip-vit-large-patch14's sizes.*text_config/);
  assert.throws(() => instantiate({ target: 'ldm.modules.encoders.modules.FrozenCLIPEmbedder', text_config: { hidden_sise: 8 } }), /unknown parameter text_config\.hidden_sise/);
  assert.throws(() => instantiate({ target: 'ldm.modules.encoders.modules.SpatialRescaler', text_config: {} }), /unknown key text_config beside target/);
});

const TINY: ClipTextConfig = { vocab_size: 300, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, max_position_embeddings: 8, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };

test('checkpoint variants: no text_model level, float or int64 position_ids, or none, all load the same weights', () => {
  const src = new FrozenCLIPEmbedder(TINY, { gen: new T.Generator(5) });
  const sd = src.stateDict();
  const ids = T.tensor([[298, 5, 17, 299, 299, 299, 299, 299]], [1, 8], 'int64');
  const ref = T.noGrad(() => src.forward(ids));
  const dir = mkdtempSync(join(tmpdir(), 'clipvar-'));
  const pos = (dtype: 'int64' | 'float32') => T.tensor(Array.from({ length: 8 }, (_, i) => i), [1, 8], dtype);
  const variants: Record<string, Map<string, T.Tensor>> = {
    int64: new Map([...sd, ['transformer.text_model.embeddings.position_ids', pos('int64')]]),
    float: new Map([...sd, ['transformer.text_model.embeddings.position_ids', pos('float32')]]),
    none: new Map(sd),
    flat: new Map([...[...sd].map(([k, v]) => [k.replace('transformer.text_model.', 'transformer.'), v] as [string, T.Tensor]), ['transformer.embeddings.position_ids', pos('int64')]]),
  };
  for (const [name, m] of Object.entries(variants)) {
    const file = join(dir, `${name}.safetensors`);
    writeSafetensors(file, new Map([...m].map(([k, v]) => [`cond_stage_model.${k}`, v])));
    const dst = new FrozenCLIPEmbedder(TINY, { gen: new T.Generator(99) });
    const rep = loadCheckpointInto(dst, file, { stripPrefix: 'cond_stage_model.' });
    assert.deepEqual([rep.missing, rep.unexpected, rep.mismatched], [[], [], []], name);
    assert.equal(relL2(T.noGrad(() => dst.forward(ids)), ref), 0, name);
  }
});

test('causal attention: a token never sees later ones; quick-GELU is x·σ(1.702x)', () => {
  const m = new FrozenCLIPEmbedder(TINY, { gen: new T.Generator(8) }).eval();
  const a = T.noGrad(() => m.forward(T.tensor([[298, 5, 17, 40, 299, 299, 299, 299]], [1, 8], 'int64'))).toArray();
  const b = T.noGrad(() => m.forward(T.tensor([[298, 5, 17, 41, 12, 299, 299, 299]], [1, 8], 'int64'))).toArray();
  const w = 16;
  assert.deepEqual(a.slice(0, 3 * w), b.slice(0, 3 * w)); // positions 0..2 identical
  assert.notDeepEqual(a.slice(3 * w, 4 * w), b.slice(3 * w, 4 * w));
  assert.deepEqual(Array.from(causalMask(3).toArray()), [0, -Infinity, -Infinity, 0, 0, -Infinity, 0, 0, 0]);
  const q = quickGelu(T.tensor([-1, 0, 2])).toArray();
  [-1, 0, 2].forEach((x, i) => assert.ok(Math.abs(q[i] - x / (1 + Math.exp(-1.702 * x))) < 1e-6));
});

test('text in: the tokenizer (vocab folder) feeds 77 ids; a missing folder names both files', () => {
  const bytes = bytesToUnicode();
  const vocab: Record<string, number> = {};
  bytes.forEach((b, i) => ((vocab[b] = i), (vocab[`${b}</w>`] = 256 + i)));
  const tok = new ClipTokenizer({ ...vocab, '<|startoftext|>': 512, '<|endoftext|>': 513 }, [], { maxLength: 8 });
  const m = new FrozenCLIPEmbedder({ ...TINY, vocab_size: 514 }, { clipTokenizer: tok, maxLength: 8 });
  const out = T.noGrad(() => m.forward(['ab', 'c']));
  assert.deepEqual(out.shape, [2, 8, 16]);
  assert.deepEqual(Array.from(m.tokenize('ab').toArray(), Number), [512, 97, 256 + 98, 513, 513, 513, 513, 513]);
  const saved = process.env.LDM_CLIP_VOCAB;
  delete process.env.LDM_CLIP_VOCAB;
  try {
    const bare = new FrozenCLIPEmbedder(TINY);
    assert.throws(() => bare.forward('a cat'), /vocab\.json and merges\.txt.*--vocab-dir.*LDM_CLIP_VOCAB/);
  } finally {
    if (saved !== undefined) process.env.LDM_CLIP_VOCAB = saved;
  }
});
