// Kind clip_tokenizer: SD v1's CLIP tokenizer on the prompts of case.json — `ids` with ftfy (CLIPTokenizer as
// SD's environment runs it), `ids_fast` without (CLIPTokenizerFast), and the BOS..EOS length `n_tokens`.

import { existsSync } from 'node:fs';
import path from 'node:path';
import * as T from '../../engine/index.js';
import { ClipTokenizer, CLIP_VOCAB_ENV } from '../../models/encoders/clip-tokenizer.js';
import type { GoldenCase, GoldenKind } from '../types.js';

/** $LDM_CLIP_VOCAB, else the folder case.json names (relative to the folder above shared/), else ../reference/clip. */
export function caseVocabDir(c: GoldenCase): string {
  const env = process.env[CLIP_VOCAB_ENV];
  if (env) return env;
  const files = c.spec.tokenizer_files as { vocab?: string } | undefined;
  const candidates = [
    files?.vocab ? path.dirname(path.resolve(c.dir, '../../..', files.vocab)) : null,
    path.resolve(c.dir, '../../reference/clip'),
  ].filter((d): d is string => d !== null);
  return candidates.find((d) => existsSync(path.join(d, 'vocab.json'))) ?? candidates[0];
}

export const clipTokenizer: GoldenKind = {
  describe: 'CLIP BPE tokenizer (ftfy clean-up, CLIP regex, byte-level BPE, BOS/EOS, pad 49407 to 77): ids, ids_fast, n_tokens',
  run: (c) => {
    const prompts = (c.spec.prompts as { text: string }[]).map((p) => p.text);
    const maxLength = (c.spec.max_length as number | undefined) ?? 77;
    const dir = caseVocabDir(c);
    const slow = ClipTokenizer.fromDir(dir, { maxLength });
    const fast = ClipTokenizer.fromDir(dir, { maxLength, clean: 'fast' });
    const nTokens = prompts.map((p) => Math.min(slow.tokenizeIds(p).length, maxLength - 2) + 2);
    return [
      { name: 'ids', actual: slow.encodeBatch(prompts), exact: true },
      { name: 'ids_fast', actual: fast.encodeBatch(prompts), exact: true },
      { name: 'n_tokens', actual: T.tensor(nTokens, [nTokens.length], 'int64'), exact: true },
    ];
  },
};
