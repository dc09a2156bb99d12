// The one table from the `target:` strings of official configs to our classes.
//
// Each row is `'python.class.Path': (p, path, opts) => instance`. `p` gives typed, tracked access to the node's
// params (see src/io/config.ts); after the builder returns, every param it did not read is reported as
// an unknown parameter with its config path. Sub-configs (`unet_config`, `first_stage_config`, ...)
// are built with `p.instantiate('key')`, which comes back through this table.
// To add a class: import its builder and add one row below (keep rows as arrow functions so that
// import cycles between model files and this table never bite). The table sits in the loader, above
// the models and diffusion layers whose classes it builds; those layers never import it.

import { ConfigError, Params, joinPath, modelNode, readYaml, type ConfigNode } from '../io/config.js';
import type { UNetBuildOptions } from '../models/unet/build.js';
import { buildAutoencoderKL, buildIdentity, buildVQModel, buildVQModelInterface } from '../models/autoencoder/index.js';
import { buildUNet } from '../models/unet/config.js';
import { buildBERTEmbedder, buildClassEmbedder, buildSpatialRescaler, buildTransformerEmbedder } from '../models/encoders/config.js';
import { buildFrozenCLIPEmbedder } from '../models/encoders/clip-config.js';
import { buildLatentDiffusion } from '../diffusion/latent-diffusion.js';
import { buildLatentInpaintDiffusion } from './inpaint-diffusion.js';
import { FIRST_STAGE } from '../models/first-stage.js';
import { buildDummyLoss, buildLPIPS, buildLPIPSWithDiscriminator, buildNLayerDiscriminator, buildVQLPIPSWithDiscriminator } from '../models/losses/index.js';

/** Build options that flow to every sub-config (meta = shape-only build, gen = init random stream). */
export type TargetBuilder = (p: Params, path: string, opts: UNetBuildOptions, node: { [key: string]: unknown }) => unknown;


export const TARGETS: Record<string, TargetBuilder> = {
  // ---- diffusion (src/diffusion) ----
  'ldm.models.diffusion.ddpm.LatentDiffusion': (p, path, o) => buildLatentDiffusion(p, path, o),
  'ldm.models.diffusion.ddpm.LatentInpaintDiffusion': (p, path, o) => buildLatentInpaintDiffusion(p, path, o),
  // ---- denoiser (src/models/unet) ----
  'ldm.modules.diffusionmodules.openaimodel.UNetModel': (p, _, o) => buildUNet(p, o),
  // ---- conditioning (src/models/encoders) ----
  'ldm.modules.encoders.modules.ClassEmbedder': (p, _, o) => buildClassEmbedder(p, o),
  'ldm.modules.encoders.modules.BERTEmbedder': (p, _, o) => buildBERTEmbedder(p, o),
  'ldm.modules.encoders.modules.TransformerEmbedder': (p, _, o) => buildTransformerEmbedder(p, o),
  'ldm.modules.encoders.modules.SpatialRescaler': (p, _, o) => buildSpatialRescaler(p, o),
  'ldm.modules.encoders.modules.FrozenCLIPEmbedder': (p, _, o, node) => buildFrozenCLIPEmbedder(p, node.text_config, o),
  '__is_unconditional__': () => null,
  '__is_first_stage__': () => FIRST_STAGE,
  'torch.nn.Identity': (p) => buildIdentity(p),
  // ---- first stage (src/models/autoencoder) ----
  'ldm.models.autoencoder.AutoencoderKL': (p, _, o) => buildAutoencoderKL(p, o),
  'ldm.models.autoencoder.VQModel': (p, _, o) => buildVQModel(p, o),
  'ldm.models.autoencoder.VQModelInterface': (p, _, o) => buildVQModelInterface(p, o),
  // ---- first-stage training losses and their networks (src/models/losses) ----
  'ldm.modules.losses.LPIPSWithDiscriminator': (p, _, o) => buildLPIPSWithDiscriminator(p, o),
  'ldm.modules.losses.contperceptual.LPIPSWithDiscriminator': (p, _, o) => buildLPIPSWithDiscriminator(p, o),
  'ldm.modules.losses.contperceptual.DummyLoss': (p) => buildDummyLoss(p),
  'taming.modules.losses.vqperceptual.DummyLoss': (p) => buildDummyLoss(p),
  'taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator': (p, _, o) => buildVQLPIPSWithDiscriminator(p, o),
  'ldm.modules.losses.vqperceptual.VQLPIPSWithDiscriminator': (p, _, o) => buildVQLPIPSWithDiscriminator(p, o),
  'taming.modules.discriminator.model.NLayerDiscriminator': (p, _, o) => buildNLayerDiscriminator(p, o),
  'taming.modules.losses.lpips.LPIPS': (p, _, o) => buildLPIPS(p, o),
};

/** Keys a config node may carry beside target/params (ignored). */
const NODE_EXTRAS = new Set(['base_learning_rate']);
/** ... and per target (FrozenCLIPEmbedder: the Hugging Face text config its `version` names, given inline). */
const TARGET_EXTRAS: Record<string, string[]> = { 'ldm.modules.encoders.modules.FrozenCLIPEmbedder': ['text_config'] };

/** Build a `{target, params}` node (or a sentinel string) found at config path `path`. */
export function instantiate<R = unknown>(node: ConfigNode, path = '', opts: UNetBuildOptions = {}): R {
  const sub = (n: ConfigNode, pth: string) => instantiate(n, pth, opts);
  if (typeof node === 'string') {
    const b = Object.hasOwn(TARGETS, node) ? TARGETS[node] : undefined;
    if (!b || !node.startsWith('__')) throw new ConfigError(`${path || 'config'}: expected {target, params} or a sentinel string, got ${JSON.stringify(node)}`);
    return b(new Params({}, joinPath(path, 'params'), node, sub), path, opts, {}) as R;
  }
  if (!node || typeof node !== 'object' || typeof node.target !== 'string') {
    throw new ConfigError(`${path || 'config'}: expected a mapping with a "target" string`);
  }
  // own rows only: `target: __proto__` / `constructor` must not reach Object.prototype
  const builder = Object.hasOwn(TARGETS, node.target) ? TARGETS[node.target] : undefined;
  if (!builder) {
    throw new ConfigError(`${joinPath(path, 'target')}: unknown target ${node.target} (known: ${Object.keys(TARGETS).filter((k) => !k.startsWith('__')).join(', ')})`);
  }
  for (const k of Object.keys(node)) {
    if (k !== 'target' && k !== 'params' && !NODE_EXTRAS.has(k) && !TARGET_EXTRAS[node.target]?.includes(k)) throw new ConfigError(`unknown key ${joinPath(path, k)} beside target ${node.target}`);
  }
  const raw = node.params ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${joinPath(path, 'params')}: expected a mapping`);
  const p = new Params(raw as Record<string, unknown>, joinPath(path, 'params'), node.target, sub);
  let out: unknown;
  try {
    out = builder(p, path, opts, node as { [key: string]: unknown });
  } catch (e) {
    // A model constructor's own check (e.g. GroupNorm groups): name the config node it came from.
    if (e instanceof ConfigError || !(e instanceof Error)) throw e;
    throw new ConfigError(`${path || 'config'} (${node.target}): ${e.message}`);
  }
  p.assertAllUsed();
  return out as R;
}

/** Read a config.yaml and build its model (`model:` section, or the root node of a bare `{target, params}` file). */
export function buildFromConfigFile<R = unknown>(file: string, opts: UNetBuildOptions = {}): R {
  const { node, path } = modelNode(readYaml(file), file);
  try {
    return instantiate<R>(node, path, opts);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}
