// First-stage training losses and their networks (PatchGAN discriminator, LPIPS), with config builders.

import type { Params } from '../../io/config.js';
import type { BuildOptions } from '../../nn/build.js';
import { NLayerDiscriminator } from './discriminator.js';
import { LPIPS } from './lpips.js';
import { DummyLoss, LPIPSWithDiscriminator, VQLPIPSWithDiscriminator, type GanLossSettings } from './perceptual.js';

export * from './discriminator.js';
export * from './lpips.js';
export * from './perceptual.js';

export function buildNLayerDiscriminator(p: Params, opts: BuildOptions = {}): NLayerDiscriminator {
  return new NLayerDiscriminator({ inputNc: p.int('input_nc', 3), ndf: p.int('ndf', 64), nLayers: p.int('n_layers', 3), useActnorm: p.bool('use_actnorm', false), gen: opts.gen, meta: opts.meta });
}

export function buildLPIPS(p: Params, opts: BuildOptions = {}): LPIPS {
  return new LPIPS(p.bool('use_dropout', true), opts);
}

export function buildDummyLoss(p: Params): DummyLoss {
  p.ignore(...Object.keys(p.raw));
  return new DummyLoss();
}

function ganSettings(p: Params, opts: BuildOptions): GanLossSettings {
  return {
    discStart: p.int('disc_start'),
    discNumLayers: p.int('disc_num_layers', 3),
    discInChannels: p.int('disc_in_channels', 3),
    discFactor: p.number('disc_factor', 1),
    discWeight: p.number('disc_weight', 1),
    perceptualWeight: p.number('perceptual_weight', 1),
    useActnorm: p.bool('use_actnorm', false),
    discConditional: p.bool('disc_conditional', false),
    discLoss: p.oneOf('disc_loss', ['hinge', 'vanilla'] as const, 'hinge'),
    gen: opts.gen,
    meta: opts.meta,
  };
}

export function buildLPIPSWithDiscriminator(p: Params, opts: BuildOptions = {}): LPIPSWithDiscriminator {
  return new LPIPSWithDiscriminator({
    ...ganSettings(p, opts),
    logvarInit: p.number('logvar_init', 0),
    klWeight: p.number('kl_weight', 1),
    pixelWeight: p.number('pixelloss_weight', 1),
  });
}

/** taming's and ldm's VQLPIPSWithDiscriminator (ldm adds n_classes, perceptual_loss, pixel_loss). */
export function buildVQLPIPSWithDiscriminator(p: Params, opts: BuildOptions = {}): VQLPIPSWithDiscriminator {
  if (p.has('perceptual_loss') && p.string('perceptual_loss') !== 'lpips') throw new Error(`${p.path}.perceptual_loss: only "lpips" is available (the reference raises for the others too)`);
  p.ignore('perceptual_loss', 'n_classes');
  return new VQLPIPSWithDiscriminator({
    ...ganSettings(p, opts),
    discNdf: p.int('disc_ndf', 64),
    codebookWeight: p.number('codebook_weight', 1),
    pixelWeight: p.number('pixelloss_weight', 1),
    pixelLoss: p.oneOf('pixel_loss', ['l1', 'l2'] as const, 'l1'),
  });
}
