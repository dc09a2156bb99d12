// Kind clip_text: the CLIP text transformer of FrozenCLIPEmbedder on given token ids: `out` = last_hidden_state
// and `hidden_states.k` = the residual stream after k layers (0 = the embeddings).

import * as T from '../../engine/index.js';
import { FrozenCLIPEmbedder } from '../../models/encoders/clip-text.js';
import { buildCaseModel, ioTensor, loadCaseWeights } from '../helpers.js';
import type { GoldenKind, GoldenOutput } from '../types.js';

export const clipText: GoldenKind = {
  describe: 'FrozenCLIPEmbedder text transformer: token ids → last_hidden_state and every hidden state (causal attention, quick-GELU)',
  run: (c) =>
    T.noGrad(() => {
      const m = buildCaseModel(c, FrozenCLIPEmbedder);
      loadCaseWeights(c, m, { stripPrefix: 'cond_stage_model.' });
      m.eval();
      const hidden: T.Tensor[] = [];
      const out = m.transformer.forward(ioTensor(c, 'tokens'), hidden);
      const res: GoldenOutput[] = [{ name: 'out', actual: out }];
      hidden.forEach((h, k) => res.push({ name: `hidden_states.${k}`, actual: h }));
      return res;
    }),
};
