// PatchGAN discriminator of the first-stage training losses (taming/modules/discriminator/model.py).
//
// NLayerDiscriminator(input_nc, ndf, n_layers), kernel 4, padding 1, all in `main` (nn.Sequential):
//   conv(input_nc → ndf, stride 2) + bias, LeakyReLU(0.2)
//   for n = 1..n_layers-1: conv(ndf·m_{n-1} → ndf·m_n, stride 2, no bias), BatchNorm2d, LeakyReLU(0.2)   m_n = min(2^n, 8)
//   conv(ndf·m → ndf·min(2^n_layers, 8), stride 1, no bias), BatchNorm2d, LeakyReLU(0.2)
//   conv(→ 1, stride 1) + bias                                    → logits [B, 1, H', W'] (one per patch)
// With use_actnorm, ActNorm replaces BatchNorm2d and the convs keep their biases.
// weights_init: conv weights N(0, 0.02²); BatchNorm weight N(1, 0.02²), bias 0.

import * as T from '../../engine/index.js';
import { BatchNorm2d, Buffer, Conv2d, Layer, LeakyReLU, Parameter, Sequential, init } from '../../nn/index.js';
import { Builder, MetaLayer, metaParameter } from '../../nn/build.js';

/** A shape-only tensor (no values), for meta builds. */
function metaTensor(shape: number[], dtype: 'float32' | 'int32' | 'int64' = 'float32'): T.Tensor {
  const data = dtype === 'float32' ? new Float32Array(0) : dtype === 'int32' ? new Int32Array(0) : new BigInt64Array(0);
  return new T.Tensor(new T.Storage(data), shape);
}

/**
 * ActNorm (taming/modules/util.py): h = scale·(x + loc) per channel; on the first training-mode call the
 * parameters are set from the batch so the output has zero mean and unit (unbiased) std per channel.
 */
export class ActNorm extends Layer {
  loc: Parameter;
  scale: Parameter;
  initialized: Buffer;
  constructor(readonly _channels: number, meta = false) {
    super();
    const s = [1, _channels, 1, 1];
    this.loc = meta ? metaParameter(s) : new Parameter(T.zeros(s));
    this.scale = meta ? metaParameter(s) : new Parameter(T.ones(s));
    this.initialized = new Buffer(meta ? metaTensor([], 'int32') : T.zeros([], 'int32'));
  }
  forward(x: T.Tensor): T.Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this._channels) throw new RangeError(`ActNorm(${this._channels}): expected [N, ${this._channels}, H, W], got [${x.shape}]`);
    if (this.training && this.initialized.item() === 0) {
      T.noGrad(() => {
        const mean = T.mean(x, [0, 2, 3], true);
        const std = T.sqrt(T.variance(x, [0, 2, 3], true, true));
        T.copyInto(this.loc, T.neg(mean));
        T.copyInto(this.scale, T.reciprocal(T.add(std, 1e-6)));
      });
      (this.initialized.data as Int32Array)[this.initialized.offset] = 1;
    }
    return T.mul(this.scale, T.add(x, this.loc));
  }
}

export interface DiscriminatorOptions {
  inputNc?: number;
  ndf?: number;
  nLayers?: number;
  useActnorm?: boolean;
  /** Random stream for weights_init (default: the engine's generator). */
  gen?: T.Generator;
  /** Shape-only build (see src/models/unet/build.ts). */
  meta?: boolean;
}

/** BatchNorm2d stand-in for meta builds: the same parameter and buffer names and shapes. */
function metaBatchNorm(c: number): Layer {
  const l = new MetaLayer('BatchNorm2d', { weight: [c], bias: [c] }) as unknown as Record<string, unknown>;
  l.running_mean = new Buffer(metaTensor([c]));
  l.running_var = new Buffer(metaTensor([c]));
  l.num_batches_tracked = new Buffer(metaTensor([], 'int64'));
  return l as unknown as Layer;
}

export class NLayerDiscriminator extends Layer {
  main: Sequential;

  constructor(opts: DiscriminatorOptions = {}) {
    super();
    const inputNc = opts.inputNc ?? 3, ndf = opts.ndf ?? 64, nLayers = opts.nLayers ?? 3;
    const gen = opts.gen ?? T.defaultGenerator;
    const b = new Builder({ meta: opts.meta, gen });
    const norm = (c: number): Layer => (opts.useActnorm ? new ActNorm(c, opts.meta) : opts.meta ? metaBatchNorm(c) : new BatchNorm2d(c));
    const useBias = !!opts.useActnorm;
    const conv = (i: number, o: number, stride: number, bias: boolean) => b.conv2d(i, o, 4, { stride, padding: 1, bias });
    const layers: Layer[] = [conv(inputNc, ndf, 2, true), new LeakyReLU(0.2)];
    let mult = 1;
    for (let n = 1; n < nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      layers.push(conv(ndf * prev, ndf * mult, 2, useBias), norm(ndf * mult), new LeakyReLU(0.2));
    }
    const prev = mult;
    mult = Math.min(2 ** nLayers, 8);
    layers.push(conv(ndf * prev, ndf * mult, 1, useBias), norm(ndf * mult), new LeakyReLU(0.2));
    layers.push(conv(ndf * mult, 1, 1, true));
    this.main = new Sequential(layers);
    weightsInit(this.main, gen);
  }

  /** x [B, input_nc, H, W] → patch logits [B, 1, H', W']. */
  forward(x: T.Tensor): T.Tensor {
    return this.main.forward(x);
  }
}

/** taming's weights_init: Conv N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0. */
export function weightsInit(seq: Sequential, gen: T.Generator): void {
  for (const m of seq) {
    if (m instanceof Conv2d) init.normal_(m.weight, 0, 0.02, gen);
    else if (m instanceof BatchNorm2d) {
      if (m.weight) init.normal_(m.weight, 1, 0.02, gen);
      if (m.bias) init.zeros_(m.bias);
    }
  }
}
