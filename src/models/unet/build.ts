// UNet-only build options (the generic builder and the meta build live in src/nn/build.ts).

import type { BuildOptions } from '../../nn/build.js';

export interface UNetBuildOptions extends BuildOptions {
  /**
   * Head count of the UNet's SpatialTransformers in `legacy` configs:
   * 'head' (default) follows the reference's current code (ldm/modules/diffusionmodules/openaimodel.py;
   * e.g. C/32 heads × 32 with num_head_channels: 32); 'single' runs them with 1 head × C, as the
   * Dec-2021 code that trained cin256, text2img256 and layout2img did. Weight shapes are identical;
   * only the outputs differ.
   */
  legacyTransformerHeads?: 'head' | 'single';
}
