// First-stage autoencoders: modules and their config builders (rows of src/loader/targets.ts).

import type { Params } from '../../io/config.js';
import { Identity, type Module } from '../../nn/index.js';
import type { BuildOptions } from '../../nn/build.js';
import { AutoencoderKL, VQModel, VQModelInterface, type FirstStageOptions } from './autoencoder.js';
import { parseDDConfig } from './model.js';

export * from './blocks.js';
export * from './model.js';
export * from './distribution.js';
export * from './quantize.js';
export * from './autoencoder.js';

/** torch.nn.Identity (accepts and ignores any arguments, like the reference). */
export function buildIdentity(p: Params): Identity {
  p.ignore(...Object.keys(p.raw));
  return new Identity();
}

/** The params every first-stage model shares: ddconfig, lossconfig, ckpt_path, ... */
function common(p: Params, opts: BuildOptions): FirstStageOptions & { ddconfig: ReturnType<typeof parseDDConfig> } {
  const ddconfig = parseDDConfig(p.sub('ddconfig')!);
  const loss = p.has('lossconfig') ? p.instantiate<Module | null>('lossconfig') : (p.get('lossconfig'), null);
  const ignoreKeys = p.has('ignore_keys') ? (p.get('ignore_keys') as unknown[]).map(String) : (p.get('ignore_keys'), []);
  p.ignore('image_key', 'monitor');
  return { ...opts, ddconfig, loss, ckptPath: p.optString('ckpt_path'), ignoreKeys, colorizeNLabels: p.optInt('colorize_nlabels') };
}

export function buildAutoencoderKL(p: Params, opts: BuildOptions = {}): AutoencoderKL {
  const c = common(p, opts);
  return new AutoencoderKL(c.ddconfig, p.int('embed_dim'), c);
}

function vqOptions(p: Params, opts: BuildOptions) {
  const c = common(p, opts);
  if (p.has('remap')) throw new Error(`${p.path}.remap: index remapping (a .npy of used codes) is not supported`);
  p.get('remap');
  // Training-only settings: accepted, no effect on the network.
  p.ignore('batch_resize_range', 'scheduler_config', 'lr_g_factor', 'use_ema');
  return { ...c, saneIndexShape: p.bool('sane_index_shape', false), nEmbed: p.int('n_embed'), embedDim: p.int('embed_dim') };
}

export function buildVQModel(p: Params, opts: BuildOptions = {}): VQModel {
  const c = vqOptions(p, opts);
  return new VQModel(c.ddconfig, c.nEmbed, c.embedDim, c);
}

export function buildVQModelInterface(p: Params, opts: BuildOptions = {}): VQModelInterface {
  const c = vqOptions(p, opts);
  return new VQModelInterface(c.ddconfig, c.nEmbed, c.embedDim, c);
}
