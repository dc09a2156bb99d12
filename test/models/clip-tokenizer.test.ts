// The CLIP tokenizer: parity with transformers' CLIPTokenizer (ftfy) and CLIPTokenizerFast on the fixture's
// prompts, the ftfy clean-up rules one by one, BPE merge order, truncation and the missing-files error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import { ClipTokenizer, bytesToUnicode, resolveClipVocabDir } from '../../src/models/encoders/clip-tokenizer.js';
import { cleanClipText, cleanClipTextFast, fixText, pyWhitespaceClean } from '../../src/models/encoders/text-clean.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = resolve(repoRoot, '../shared/golden/clip_tokenizer');
const vocabDir = resolve(repoRoot, '../shared/reference/clip');
const haveFixture = existsSync(join(fixture, 'io.safetensors')) && existsSync(join(vocabDir, 'vocab.json'));

test('CLIP tokenizer: ids (ftfy) and ids_fast equal the fixture for every prompt', { skip: haveFixture ? false : `fixture not found at ${fixture}` }, () => {
  const spec = JSON.parse(readFileSync(join(fixture, 'case.json'), 'utf8')) as { prompts: { name: string; text: string; n_tokens: number }[] };
  const io = readSafetensors(join(fixture, 'io.safetensors')).tensors;
  for (const [mode, key] of [['ftfy', 'ids'], ['fast', 'ids_fast']] as const) {
    const tok = ClipTokenizer.fromDir(vocabDir, { clean: mode });
    const ref = io.get(key)!.toArray();
    spec.prompts.forEach((p, i) => {
      assert.deepEqual(tok.encode(p.text), Array.from(ref.slice(i * 77, (i + 1) * 77), Number), `${key} ${p.name}`);
    });
  }
  const tok = ClipTokenizer.fromDir(vocabDir);
  // published outputs of the real tokenizer (transformers issues 19118 and 22166)
  assert.deepEqual(tok.encode('résumé').slice(0, 5), [49406, 29106, 7054, 4166, 49407]);
  assert.deepEqual(tok.encode("You should've done this").slice(0, 7), [49406, 592, 1535, 1200, 1700, 589, 49407]);
});

test('ftfy subset: entities ending in ";" unless a "<" was seen, quotes, ligatures, widths, controls, NFC', () => {
  assert.equal(fixText('fish &amp; chips &quot;q&quot; &#39;a&#39; caf&eacute; &#x263A; &EACUTE;'), 'fish & chips "q" \'a\' café ☺ É');
  assert.equal(fixText('salt &amp;amp; pepper'), 'salt & pepper'); // repeated until stable
  assert.equal(fixText('&copy 2022 AT&T &amp'), '&copy 2022 AT&T &amp'); // no ';': untouched
  assert.equal(fixText('<b>x</b> &amp; y'), '<b>x</b> &amp; y'); // a literal '<': no unescaping
  assert.equal(fixText('a &amp; b\n<i>\n&amp;'), 'a & b\n<i>\n&amp;'); // ... in that line and every later one
  assert.equal(fixText('&#12ab; &#0; &#128; &#xD800;'), '&#12ab; \ufffd € \ufffd'); // Python html's charref rules
  assert.equal(fixText('\u201csmart\u201d \u2018s\u2019 can\u02bct \u201ex\u201f'), '"smart" \'s\' can\'t "x"');
  assert.equal(fixText('\ufb01ne \ufb03ce \u0132'), 'fine ffice IJ');
  assert.equal(fixText('\uff2c\uff2f\u3000\uff11\uff01 \uff83\uff7d\uff84'), 'LO 1! テスト');
  assert.equal(fixText('bell\u0007 \u001b[31mred\u001b[0m nul\u0000 v\u000bt \ufeffz\u2060'), 'bell red nul vt z\u2060');
  assert.equal(fixText('a\r\nb\rc\u2028d\u2029e\u0085'), 'a\nb\nc\nd\ne…'); // U+0085 is a C1 control first (…)
  assert.equal(fixText('\x80\x93\x81'), '€"\x81'); // C1 controls as Windows-1252 (sloppy), then uncurled
  assert.equal(fixText('cafe\u0301'), 'caf\u00e9');
  // Python whitespace (not JavaScript's \s: U+FEFF is not space, U+001C is) and str.lower with final sigma
  assert.equal(pyWhitespaceClean(' a\u00a0\u2003b\u001cc\ufeff '), 'a b c\ufeff');
  assert.equal(cleanClipText('ΟΔΥΣΣΕΥΣ  Ok'), 'οδυσσευς ok');
  assert.equal(cleanClipTextFast('ΟΔΥΣΣΕΥΣ\ufeff'), 'οδυσσευσ\ufeff'); // per-character lower case, no ftfy
});

// A tiny vocabulary in CLIP's layout: bytes, bytes</w>, merges, BOS, EOS.
function tinyTokenizer(maxLength = 8): ClipTokenizer {
  const bytes = bytesToUnicode();
  const merges = ['a b', 'b c', 'ab c</w>', 'c </w>', 'c d</w>'];
  const vocab: Record<string, number> = {};
  let n = 0;
  for (const b of bytes) vocab[b] = n++;
  for (const b of bytes) vocab[`${b}</w>`] = n++;
  for (const m of merges) vocab[m.replace(' ', '')] = n++;
  vocab['<|startoftext|>'] = n++;
  vocab['<|endoftext|>'] = n++;
  return new ClipTokenizer(vocab, merges, { maxLength });
}

test('BPE: the lowest-ranked pair first, </w> on the last symbol, special tokens typed in a prompt, truncation', () => {
  const tok = tinyTokenizer();
  assert.deepEqual(tok.bpe('abc'), ['abc</w>']); // a b (rank 0) before b c (rank 1), then ab c</w>
  assert.deepEqual(tok.bpe('bc'), ['b', 'c</w>']); // "b c" is not a merge of b + "c</w>"
  assert.deepEqual(tok.bpe('ab'), ['a', 'b</w>']); // "a b" merges only inside a word; b</w> is another symbol
  assert.deepEqual(tok.bpe('ababa'), ['ab', 'ab', 'a</w>']);
  const bos = tok.bosId, eos = tok.eosId, v = tok.encoder;
  assert.deepEqual(tok.encode('ABC 1'), [bos, v.get('abc</w>')!, v.get('1</w>')!, eos, eos, eos, eos, eos]);
  assert.deepEqual(tok.encode('cd<|endoftext|>c'), [bos, v.get('cd</w>')!, eos, v.get('c</w>')!, eos, eos, eos, eos]);
  assert.deepEqual(tok.tokenizeIds('c<|startoftext|>c'), [v.get('c</w>')!, bos, v.get('c</w>')!]);
  assert.deepEqual(tok.tokenizeIds("it's 12"), [v.get('i')!, v.get('t</w>')!, v.get("'")!, v.get('s</w>')!, v.get('1</w>')!, v.get('2</w>')!]);
  // more than maxLength − 2 tokens: EOS stays last
  const long = tok.encode('a a a a a a a a a');
  assert.equal(long.length, 8);
  assert.equal(long[0], bos);
  assert.equal(long[7], eos);
  assert.deepEqual(long.slice(1, 7), new Array(6).fill(v.get('a</w>')!));
});

test('CLIP tokenizer files: the error names both files and the two ways to point at them', () => {
  const saved = process.env.LDM_CLIP_VOCAB;
  delete process.env.LDM_CLIP_VOCAB;
  try {
    assert.throws(() => resolveClipVocabDir(), /vocab\.json and merges\.txt.*--vocab-dir.*LDM_CLIP_VOCAB/);
    const d = mkdtempSync(join(tmpdir(), 'clipvocab-'));
    assert.throws(() => resolveClipVocabDir(d), new RegExp(`${d} lacks vocab\\.json and merges\\.txt`));
    writeFileSync(join(d, 'vocab.json'), '{}');
    assert.throws(() => ClipTokenizer.fromDir(d), /lacks merges\.txt/);
    process.env.LDM_CLIP_VOCAB = d;
    writeFileSync(join(d, 'merges.txt'), 'a b\n');
    assert.throws(() => ClipTokenizer.fromDir(), /merges\.txt: the first line should be the "#version/);
  } finally {
    if (saved === undefined) delete process.env.LDM_CLIP_VOCAB;
    else process.env.LDM_CLIP_VOCAB = saved;
  }
});
