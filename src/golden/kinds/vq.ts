// Kind vq: h = encode(x) (pre-quantization); quantize(h) → quant, codebook loss, indices;
// decode(h) (quantizes) and decode(h, force_not_quantize).

import * as T from '../../engine/index.js';
import { VQModel, VQModelInterface } from '../../models/autoencoder/index.js';
import { caseModel, ioTensor, likeExpected } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const vq: GoldenKind = {
  describe: 'VQModel(Interface): pre-quantization latent, nearest-codebook quantization (indices exact), decode with and without quantization',
  run: (c) =>
    T.noGrad(() => {
      const m = caseModel<VQModelInterface | VQModel>(c, VQModelInterface, VQModel);
      m.eval();
      const h = m.encodeToPrequant(ioTensor(c, 'x'));
      const q = m.quantize.forward(h);
      const decoded = m instanceof VQModelInterface ? m.decode(h) : m.decode(q.quant);
      const notQuantized = m instanceof VQModelInterface ? m.decode(h, true) : m.decode(h);
      return [
        { name: 'h', actual: h },
        { name: 'quant', actual: q.quant },
        { name: 'codebook_loss', actual: likeExpected(c, 'codebook_loss', q.loss) },
        { name: 'indices', actual: likeExpected(c, 'indices', q.indices), exact: true },
        { name: 'decoded', actual: decoded },
        { name: 'decoded_not_quantized', actual: notQuantized },
      ];
    }),
};
