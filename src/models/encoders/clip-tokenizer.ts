// The CLIP byte-level BPE tokenizer of SD v1's FrozenCLIPEmbedder (transformers' CLIPTokenizer of
// openai/clip-vit-large-patch14, as ldm/modules/encoders/modules.py calls it: truncation, max_length 77,
// padding "max_length"; the BPE itself is openai/CLIP clip/simple_tokenizer.py's).
//
//   1. the literal strings <|startoftext|> / <|endoftext|> typed in a prompt become ids 49406 / 49407;
//   2. every other piece is cleaned (text-clean.ts: ftfy.fix_text, whitespace, str.lower; or, in the
//      'fast' mode of CLIPTokenizerFast, NFC + whitespace + per-character lower case only);
//   3. split by the CLIP pattern (letters runs, single digits, runs of other non-space characters,
//      English contractions);
//   4. each piece's UTF-8 bytes → the byte-level alphabet (GPT-2's bytes_to_unicode);
//   5. BPE: merge the adjacent pair of lowest merge rank until none is in merges.txt, '</w>' on the
//      last symbol; each symbol → its vocab.json id;
//   6. [BOS] + the first 75 ids + [EOS], padded with the pad id 49407 to 77.
// Files: vocab.json + merges.txt (from --vocab-dir, LDM_CLIP_VOCAB, or the constructor).

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../engine/index.js';
import { cleanClipText, cleanClipTextFast } from './text-clean.js';

export const CLIP_BOS = '<|startoftext|>';
export const CLIP_EOS = '<|endoftext|>';
export const CLIP_VOCAB_ENV = 'LDM_CLIP_VOCAB';

// The CLIP pattern (IGNORECASE); `\s` as the `regex` module's Unicode whitespace.
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/giu;
const SPECIAL_SPLIT = /<\|startoftext\|>|<\|endoftext\|>/g;

/** GPT-2's bytes_to_unicode: byte → a printable character (printable bytes map to themselves). */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array<string>(256);
  const kept = new Set(keep);
  for (const b of keep) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!kept.has(b)) table[b] = String.fromCharCode(256 + n++);
  return table;
}

export interface ClipTokenizerOptions {
  /** Sequence length with BOS/EOS (77 for SD v1). */
  maxLength?: number;
  /** 'ftfy' (CLIPTokenizer as SD's environment runs it, default) or 'fast' (CLIPTokenizerFast: no ftfy). */
  clean?: 'ftfy' | 'fast';
}

/** Where the tokenizer files are looked for: the given folder, else $LDM_CLIP_VOCAB. */
export function resolveClipVocabDir(dir?: string): string {
  const d = dir ?? process.env[CLIP_VOCAB_ENV];
  if (!d) {
    throw new Error(`the CLIP tokenizer needs vocab.json and merges.txt (openai/clip-vit-large-patch14's tokenizer files): give their folder with --vocab-dir or the ${CLIP_VOCAB_ENV} environment variable`);
  }
  const missing = ['vocab.json', 'merges.txt'].filter((f) => !existsSync(path.join(d, f)));
  if (missing.length) {
    throw new Error(`the CLIP tokenizer folder ${d} lacks ${missing.join(' and ')} (it needs vocab.json and merges.txt of openai/clip-vit-large-patch14; set --vocab-dir or ${CLIP_VOCAB_ENV})`);
  }
  return d;
}

export class ClipTokenizer {
  readonly encoder: Map<string, number>;
  readonly bpeRanks: Map<string, number>;
  readonly maxLength: number;
  readonly clean: 'ftfy' | 'fast';
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly byteEncoder = bytesToUnicode();
  private readonly cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  /** vocab: token → id (vocab.json); merges: "left right" lines in rank order (merges.txt without its header). */
  constructor(vocab: Record<string, number> | Map<string, number>, merges: readonly string[], opts: ClipTokenizerOptions = {}) {
    this.encoder = vocab instanceof Map ? vocab : new Map(Object.entries(vocab));
    this.bpeRanks = new Map();
    merges.forEach((m, i) => {
      const parts = m.split(' ');
      if (parts.length !== 2) throw new Error(`CLIP merges: line ${i + 2} is not "left right": ${JSON.stringify(m)}`);
      if (!this.bpeRanks.has(m)) this.bpeRanks.set(m, i);
    });
    this.maxLength = opts.maxLength ?? 77;
    if (this.maxLength < 2) throw new RangeError(`ClipTokenizer: max_length ${this.maxLength} leaves no room for BOS and EOS`);
    this.clean = opts.clean ?? 'ftfy';
    const id = (t: string) => {
      const v = this.encoder.get(t);
      if (v === undefined) throw new Error(`CLIP vocabulary has no ${t} token`);
      return v;
    };
    this.bosId = id(CLIP_BOS);
    this.eosId = id(CLIP_EOS);
    this.padId = this.eosId;
    this.cache.set(CLIP_BOS, [CLIP_BOS]);
    this.cache.set(CLIP_EOS, [CLIP_EOS]);
  }

  /** Reads vocab.json and merges.txt from a folder (see resolveClipVocabDir for the fallbacks). */
  static fromDir(dir?: string, opts: ClipTokenizerOptions = {}): ClipTokenizer {
    const d = resolveClipVocabDir(dir);
    const vocabPath = path.join(d, 'vocab.json'), mergesPath = path.join(d, 'merges.txt');
    let vocab: Record<string, number>;
    try {
      vocab = JSON.parse(readFileSync(vocabPath, 'utf8')) as Record<string, number>;
    } catch (e) {
      throw new Error(`${vocabPath}: not a JSON token → id map (${(e as Error).message})`);
    }
    const lines = readFileSync(mergesPath, 'utf8').split('\n');
    if (!lines[0]?.startsWith('#version')) throw new Error(`${mergesPath}: the first line should be the "#version: …" header`);
    // transformers reads merges[1 : 49152 − 256 − 2 + 1]
    const merges = lines.slice(1, 49152 - 256 - 2 + 1).filter((l) => l.length > 0);
    return new ClipTokenizer(vocab, merges, opts);
  }

  /** BPE symbols of one pre-token (already in the byte-level alphabet). */
  bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    let word = [...token];
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.bpeRanks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
      }
      if (best < 0) break;
      const first = word[best], second = word[best + 1];
      // merge every non-overlapping occurrence of the pair, left to right
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else next.push(word[i++]);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Cleaned, pre-tokenised pieces of text without special tokens (step 2–3). */
  preTokenize(text: string): string[] {
    const cleaned = this.clean === 'ftfy' ? cleanClipText(text) : cleanClipTextFast(text);
    return [...cleaned.matchAll(CLIP_PATTERN)].map((m) => m[0]);
  }

  private pieceIds(text: string, out: number[]): void {
    for (const piece of this.preTokenize(text)) {
      let mapped = '';
      for (const b of this.utf8.encode(piece)) mapped += this.byteEncoder[b];
      for (const sym of this.bpe(mapped)) out.push(this.encoder.get(sym) ?? this.eosId); // unk = <|endoftext|>
    }
  }

  /** Token ids of a text without BOS/EOS, truncation or padding. */
  tokenizeIds(text: string): number[] {
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(SPECIAL_SPLIT)) {
      this.pieceIds(text.slice(last, m.index), ids);
      ids.push(m[0] === CLIP_BOS ? this.bosId : this.eosId);
      last = m.index! + m[0].length;
    }
    this.pieceIds(text.slice(last), ids);
    return ids;
  }

  /** BOS, the first maxLength − 2 ids, EOS, then padding: exactly maxLength ids. */
  encode(text: string): number[] {
    const ids = [this.bosId, ...this.tokenizeIds(text).slice(0, this.maxLength - 2), this.eosId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    return ids;
  }

  /** Texts → int64 [B, maxLength] (input_ids). */
  encodeBatch(texts: string | readonly string[]): T.Tensor {
    const list = typeof texts === 'string' ? [texts] : texts;
    return T.tensor(list.flatMap((t) => this.encode(t)), [list.length, this.maxLength], 'int64');
  }
}
