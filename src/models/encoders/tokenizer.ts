// WordPiece tokenizer with the rules of HF BertTokenizerFast("bert-base-uncased"), as used by the
// reference's BERTTokenizer(truncation=True, max_length=77, padding="max_length"):
//
//   1. special tokens written literally in the text ([CLS], [SEP], [PAD], [UNK], [MASK]) are kept whole
//      (they are matched on the raw text, case-sensitively, before normalisation);
//   2. normalise: drop NUL, U+FFFD and control characters, map every whitespace character to ' ',
//      put spaces around CJK ideographs, strip accents (NFD, then drop non-spacing marks), lowercase;
//   3. pre-tokenise: split on whitespace, and make every punctuation character its own word
//      (ASCII punctuation ranges and Unicode category P);
//   4. WordPiece: greedy longest-match-first over the vocabulary, continuation pieces prefixed "##";
//      a word with no full segmentation, or longer than 100 characters, becomes [UNK];
//   5. [CLS] pieces… [SEP], truncated to max_length (pieces cut to max_length − 2), padded with [PAD].
// The vocabulary is a user-supplied vocab.txt: one token per line, id = line number (0-based).

import { readFileSync } from 'node:fs';
import * as T from '../../engine/index.js';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const MAX_CHARS_PER_WORD = 100;

function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return /\p{C}/u.test(ch);
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /\p{Zs}/u.test(ch);
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return /\p{P}/u.test(ch);
}

/** BertNormalizer(clean_text, handle_chinese_chars, strip_accents = lowercase = true). */
export function normalizeBert(text: string): string {
  let s = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    if (isWhitespace(ch)) s += ' ';
    else if (isChineseChar(cp)) s += ` ${ch} `;
    else s += ch;
  }
  // Lower-casing is per character (the Rust normaliser maps every Σ to σ, with no final-sigma rule).
  let out = '';
  for (const ch of s.normalize('NFD').replace(/\p{Mn}/gu, '')) out += ch.toLowerCase();
  return out;
}

/** BertPreTokenizer: whitespace-separated words, each punctuation character a word of its own. */
export function preTokenizeBert(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  const flush = () => {
    if (cur) words.push(cur);
    cur = '';
  };
  for (const ch of text) {
    if (/\s/u.test(ch)) flush();
    else if (isPunctuation(ch)) {
      flush();
      words.push(ch);
    } else cur += ch;
  }
  flush();
  return words;
}

export class WordPieceTokenizer {
  readonly vocab: Map<string, number>;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;

  constructor(tokens: readonly string[], readonly maxLength = 77) {
    this.vocab = new Map();
    tokens.forEach((t, i) => {
      if (!this.vocab.has(t)) this.vocab.set(t, i);
    });
    const need = (t: string) => {
      const id = this.vocab.get(t);
      if (id === undefined) throw new Error(`WordPieceTokenizer: vocabulary has no ${t} token`);
      return id;
    };
    this.padId = need('[PAD]');
    this.unkId = need('[UNK]');
    this.clsId = need('[CLS]');
    this.sepId = need('[SEP]');
    if (maxLength < 2) throw new RangeError(`WordPieceTokenizer: max_length ${maxLength} leaves no room for [CLS] and [SEP]`);
  }

  /** Reads a vocab.txt (one token per line; the line number is the id). */
  static fromVocabFile(path: string, maxLength = 77): WordPieceTokenizer {
    const lines = readFileSync(path, 'utf8').split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return new WordPieceTokenizer(lines.map((l) => l.replace(/\r$/, '')), maxLength);
  }

  /** WordPiece pieces (ids) of one pre-tokenised word. */
  private wordIds(word: string): number[] {
    const chars = [...word];
    if (chars.length > MAX_CHARS_PER_WORD) return [this.unkId];
    const ids: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found = -1;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        const id = this.vocab.get(sub);
        if (id !== undefined) {
          found = id;
          break;
        }
        end--;
      }
      if (found < 0) return [this.unkId];
      ids.push(found);
      start = end;
    }
    return ids;
  }

  /** Word-piece ids of a text, without [CLS]/[SEP], truncation or padding. */
  tokenizeIds(text: string): number[] {
    const ids: number[] = [];
    // Split out literal special tokens first (they are matched before normalisation).
    const pattern = new RegExp(SPECIALS.filter((s) => this.vocab.has(s)).map((s) => s.replace(/[[\]]/g, '\\$&')).join('|'), 'g');
    let last = 0;
    const pushText = (s: string) => {
      for (const w of preTokenizeBert(normalizeBert(s))) ids.push(...this.wordIds(w));
    };
    for (const m of text.matchAll(pattern)) {
      pushText(text.slice(last, m.index));
      ids.push(this.vocab.get(m[0])!);
      last = m.index! + m[0].length;
    }
    pushText(text.slice(last));
    return ids;
  }

  /** [CLS] ids [SEP] [PAD]…, exactly maxLength ids. */
  encode(text: string): number[] {
    const body = this.tokenizeIds(text).slice(0, this.maxLength - 2);
    const ids = [this.clsId, ...body, this.sepId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    return ids;
  }

  /** A batch of texts → int64 tensor [B, maxLength] (the reference's input_ids). */
  encodeBatch(texts: string | readonly string[]): T.Tensor {
    const list = typeof texts === 'string' ? [texts] : texts;
    const flat = list.flatMap((t) => this.encode(t));
    return T.tensor(flat, [list.length, this.maxLength], 'int64');
  }
}
