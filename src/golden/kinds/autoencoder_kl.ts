// Kind autoencoder_kl: encode → Gaussian posterior → z = mean + std·noise → decode; decode(mean); KL.

import * as T from '../../engine/index.js';
import { AutoencoderKL } from '../../models/autoencoder/index.js';
import { caseModel, ioTensor } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const autoencoderKL: GoldenKind = {
  describe: 'AutoencoderKL: posterior (mean, logvar), z = mean + std·noise, decode(z), decode(mean), kl',
  run: (c) =>
    T.noGrad(() => {
      const m = caseModel(c, AutoencoderKL);
      m.eval();
      const posterior = m.encode(ioTensor(c, 'x'));
      const z = posterior.sample(ioTensor(c, 'noise'));
      return [
        { name: 'posterior.mean', actual: posterior.mean },
        { name: 'posterior.logvar', actual: posterior.logvar },
        { name: 'z', actual: z },
        { name: 'decoded', actual: m.decode(z) },
        { name: 'decoded_mode', actual: m.decode(posterior.mode()) },
        { name: 'kl', actual: posterior.kl() },
      ];
    }),
};
