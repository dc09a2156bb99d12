// Kind discriminator: the PatchGAN with batch statistics (training mode) and in eval mode with the running
// statistics after that call. The fixture's weights were saved after the training-mode call (its
// num_batches_tracked is 1), so eval mode runs on the loaded statistics, before this training-mode call
// updates them once more.

import * as T from '../../engine/index.js';
import { NLayerDiscriminator } from '../../models/losses/index.js';
import { caseModel, ioTensor } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const discriminator: GoldenKind = {
  describe: 'NLayerDiscriminator: logits in training mode (batch statistics), then eval mode (updated running statistics)',
  run: (c) =>
    T.noGrad(() => {
      const d = caseModel(c, NLayerDiscriminator);
      const x = ioTensor(c, 'x');
      const outEval = d.eval().forward(x);
      const outTrain = d.train().forward(x);
      return [
        { name: 'out_train', actual: outTrain },
        { name: 'out_eval', actual: outEval },
      ];
    }),
};
