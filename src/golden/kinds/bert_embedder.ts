// Kind bert_embedder: the text transformer of the BERT conditioning on given token ids (no tokenizer):
// out = transformer(tokens, return_embeddings=True).

import * as T from '../../engine/index.js';
import { BERTEmbedder } from '../../models/encoders/index.js';
import { caseModel, ioTensor } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const bertEmbedder: GoldenKind = {
  describe: 'BERTEmbedder: token ids → TransformerWrapper embeddings (learned positions, pre-norm encoder, final LayerNorm)',
  run: (c) =>
    T.noGrad(() => {
      const m = caseModel(c, BERTEmbedder);
      m.eval();
      return [{ name: 'out', actual: m.forward(ioTensor(c, 'tokens')) }];
    }),
};
