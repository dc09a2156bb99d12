// Kind unet: one forward pass of the denoising UNet, out = unet(x, t, context?, y?) — context for the
// cross-attention models, y (class labels) for class-conditional ones.

import * as T from '../../engine/index.js';
import { UNetModel } from '../../models/unet/index.js';
import { caseModel, ioTensor } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const unet: GoldenKind = {
  describe: 'UNetModel: out = unet(x, t, context?, y?) (cross-attention, class labels, scale-shift norm, resblock up/down)',
  run: (c) =>
    T.noGrad(() => {
      const m = caseModel(c, UNetModel);
      m.eval();
      const out = m.forward(ioTensor(c, 'x'), ioTensor(c, 't'), c.io.get('context') ?? null, c.io.get('y') ?? null);
      return [{ name: 'out', actual: out }];
    }),
};
