// Kind ldm_scale_by_std: a LatentDiffusion with scale_by_std at its first training batch: the latent z of x at
// scale factor 1 (posterior noise given), scale_factor = 1 / std(z) (unbiased, float32), and that batch's
// training latent with the new factor and a fresh posterior draw (noise_train).

import * as T from '../../engine/index.js';
import { LatentDiffusion } from '../../diffusion/latent-diffusion.js';
import { DiagonalGaussianDistribution } from '../../models/autoencoder/distribution.js';
import { ldmGetInput, prepareLdmTraining, scaleByStd } from '../../train/ldm-step.js';
import { caseModel, ioTensor } from '../helpers.js';
import type { GoldenKind } from '../types.js';

export const ldmScaleByStd: GoldenKind = {
  describe: 'LatentDiffusion scale_by_std: scale_factor = 1 / std of the first batch latents (unbiased, float32), scaled training latent',
  run: (c) => {
    const m = caseModel(c, LatentDiffusion);
    prepareLdmTraining(m);
    const x = ioTensor(c, 'x');
    const post = T.noGrad(() => m.encodeFirstStage(x));
    if (!(post instanceof DiagonalGaussianDistribution)) throw new Error(`${c.dir}: the first stage is not a KL autoencoder`);
    const z = ldmGetInput(m, x, ioTensor(c, 'noise'));
    const s = scaleByStd(m, x, ioTensor(c, 'noise'));
    return [
      { name: 'posterior.mean', actual: post.mean },
      { name: 'posterior.logvar', actual: post.logvar },
      { name: 'z', actual: z },
      { name: 'scale_factor', actual: T.tensor([s], [1]) },
      { name: 'z_train', actual: ldmGetInput(m, x, ioTensor(c, 'noise_train')) },
    ];
  },
};
