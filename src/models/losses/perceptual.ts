// First-stage training losses: LPIPSWithDiscriminator (KL autoencoders, ldm/modules/losses/contperceptual.py)
// and VQLPIPSWithDiscriminator (VQ models, taming/modules/losses/vqperceptual.py and its ldm variant).
//
// Generator step (optimizer_idx 0):
//   rec   = |x − x̂| (+ perceptual_weight · LPIPS(x, x̂))             (VQ-ldm: l1 or l2 pixel loss)
//   KL:   nll = rec / e^logvar + logvar;  loss = Σnll/B (weighted) + kl_weight · Σkl/B + d_weight · f · g_loss
//   VQ:   nll = mean(rec);                loss = nll + d_weight · f · g_loss + codebook_weight · mean(codebook_loss)
//   g_loss = −mean(D(x̂));  d_weight = clamp(‖∇_last nll‖ / (‖∇_last g_loss‖ + 1e-4), 0, 1e4) · disc_weight
//   (∇_last = gradient w.r.t. the decoder's last conv weight; 0 when no graph, i.e. not training)
//   f = disc_factor once global_step ≥ disc_start, else 0.
// Discriminator step (optimizer_idx 1): f · hinge (or vanilla) loss of D(x) vs D(x̂) on detached inputs.

import * as T from '../../engine/index.js';
import { Module, Parameter } from '../../nn/index.js';
import type { DiagonalGaussianDistribution } from '../autoencoder/distribution.js';
import { metaParameter } from '../../nn/build.js';
import { NLayerDiscriminator } from './discriminator.js';
import { LPIPS, type LpipsDropoutOptions } from './lpips.js';

export function adoptWeight(weight: number, globalStep: number, threshold = 0, value = 0): number {
  return globalStep < threshold ? value : weight;
}

export function hingeDLoss(real: T.Tensor, fake: T.Tensor): T.Tensor {
  const lr = T.mean(T.relu(T.sub(1, real)));
  const lf = T.mean(T.relu(T.add(fake, 1)));
  return T.mul(T.add(lr, lf), 0.5);
}

/** softplus(x) = log(1 + eˣ) (linear above 20, like torch's threshold). */
export function softplus(x: T.Tensor): T.Tensor {
  const s = T.log(T.add(T.exp(T.minimum(x, T.full([], 20, x.dtype))), 1));
  return T.where(T.gt(x, 20), x, s);
}

export function vanillaDLoss(real: T.Tensor, fake: T.Tensor): T.Tensor {
  return T.mul(T.add(T.mean(softplus(T.neg(real))), T.mean(softplus(fake))), 0.5);
}

/**
 * ∂loss/∂wrt (like torch.autograd.grad with retain_graph): a backward pass over the retained graph restricted
 * to the nodes that depend on `wrt` (as autograd.grad computes only what the requested input needs), leaving
 * every other tensor's .grad as it was. Null when `wrt` is not part of loss's graph.
 */
export function gradWrt(loss: T.Tensor, wrt: T.Tensor, seed?: T.Tensor): T.Tensor | null {
  if (!loss.gradFn || !wrt.requiresGrad) return null;
  // Post-order walk: a tensor reaches wrt when it is wrt or one of its inputs reaches it.
  const reaches = new Map<T.Tensor, boolean>();
  const stack: [T.Tensor, number][] = [[loss, 0]];
  const onStack = new Set<T.Tensor>([loss]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t] = top;
    const inputs = t.gradFn ? t.gradFn.inputs : [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next && next.requiresGrad && !reaches.has(next) && !onStack.has(next)) {
        stack.push([next, 0]);
        onStack.add(next);
      }
      continue;
    }
    stack.pop();
    onStack.delete(t);
    reaches.set(t, t === wrt || inputs.some((i) => !!i && reaches.get(i) === true));
  }
  if (!reaches.get(wrt)) return null;
  // Every other branch is hidden from backward for the duration of the pass.
  const pruned: T.Tensor[] = [];
  for (const [t, r] of reaches) if (!r) {
    t.requiresGrad = false;
    pruned.push(t);
  }
  const saved = wrt.grad;
  wrt.grad = null;
  try {
    T.withGradReadyHook(() => {}, () => T.backward(loss, { retainGraph: true, grad: seed }));
    return wrt.grad;
  } finally {
    wrt.grad = saved;
    for (const t of pruned) t.requiresGrad = true;
  }
}

function l2norm(t: T.Tensor): number {
  let s = 0;
  for (const v of T.contiguousData(t) as Float32Array) s += v * v;
  return Math.sqrt(s);
}

export interface GanLossSettings {
  discStart: number;
  discNumLayers?: number;
  discInChannels?: number;
  discFactor?: number;
  discWeight?: number;
  perceptualWeight?: number;
  useActnorm?: boolean;
  discConditional?: boolean;
  discNdf?: number;
  discLoss?: 'hinge' | 'vanilla';
  gen?: T.Generator;
  /** Shape-only build of the networks. */
  meta?: boolean;
}

export interface LossStep {
  loss: T.Tensor;
  log: Record<string, number>;
  /** The generator pass's LPIPS distance per sample [B, 1, 1, 1] (null when the perceptual weight is 0). */
  pLoss?: T.Tensor | null;
}

/** Options of the generator / discriminator passes of both losses. */
export interface GanLossForwardOptions {
  /** The decoder's last layer weight, for the adaptive GAN weight (null: weight 0, as outside training). */
  lastLayer?: T.Tensor | null;
  /** Conditioning concatenated to the discriminator's input (disc_conditional). */
  cond?: T.Tensor | null;
  /** Log-key prefix (default "train"). */
  split?: string;
  /** LPIPS dropout draws (training mode) or recorded keep masks. */
  lpips?: LpipsDropoutOptions;
}

abstract class GanLossBase extends Module {
  perceptual_loss: LPIPS;
  discriminator: NLayerDiscriminator;
  readonly _s: Required<Omit<GanLossSettings, 'gen' | 'meta'>>;

  /** The configured perceptual weight (0 after disablePerceptual). */
  get perceptualWeight(): number {
    return this._s.perceptualWeight;
  }
  /** Train without the perceptual term (when no LPIPS weights are available): rec = pixel loss only. */
  disablePerceptual(): void {
    this._s.perceptualWeight = 0;
  }

  constructor(s: GanLossSettings) {
    super();
    this._s = {
      discStart: s.discStart, discNumLayers: s.discNumLayers ?? 3, discInChannels: s.discInChannels ?? 3, discFactor: s.discFactor ?? 1,
      discWeight: s.discWeight ?? 1, perceptualWeight: s.perceptualWeight ?? 1, useActnorm: s.useActnorm ?? false,
      discConditional: s.discConditional ?? false, discNdf: s.discNdf ?? 64, discLoss: s.discLoss ?? 'hinge',
    };
    this.perceptual_loss = new LPIPS(true, { gen: s.gen, meta: s.meta });
    this.discriminator = new NLayerDiscriminator({ inputNc: this._s.discInChannels, ndf: this._s.discNdf, nLayers: this._s.discNumLayers, useActnorm: this._s.useActnorm, gen: s.gen, meta: s.meta });
  }

  /**
   * The generator's GAN term g = −mean(D(x̂)) and the adaptive weight λ = ‖∇_L nll‖ / (‖∇_L g‖ + 1e-4), clamped
   * to [0, 1e4], × disc_weight, at the decoder's last layer L (calculate_adaptive_weight in the reference's
   * losses; 0 without `adaptive`, without L, or outside training). The loss adds λ·f·g.
   *
   * With the discriminator frozen (its parameters need no gradient, as in the generator pass of training), its
   * backward runs once instead of twice: ∂g/∂x̂ is taken with x̂ as a leaf, ∇_L g follows from it through the
   * decoder's last layer, and `term` (value 0) hands λ·f·∂g/∂x̂ to x̂ in the loss's backward. Otherwise g keeps its
   * graph and the loss's backward differentiates through the discriminator again, as the reference does.
   */
  protected generatorTerm(recon: T.Tensor, nll: T.Tensor, opts: GanLossForwardOptions, adaptive: boolean, f: number): { g: T.Tensor; dWeight: number; term: T.Tensor | null } {
    const lastLayer = adaptive ? opts.lastLayer ?? null : null;
    const frozen = !!lastLayer && recon.requiresGrad && T.isGradEnabled() && !this.discriminator.parameters().some((p) => p.requiresGrad);
    const leaf = frozen ? T.requireGrad(T.detach(recon)) : null;
    const g = T.neg(T.mean(this.discriminator.forward(this.discInput(leaf ?? recon, opts.cond, false))));
    if (!lastLayer) return { g, dWeight: 0, term: null };
    const gRec = leaf ? gradWrt(g, leaf) : null;
    const gn = gradWrt(nll, lastLayer), gg = gRec ? gradWrt(recon, lastLayer, gRec) : gradWrt(g, lastLayer);
    let dWeight = 0;
    if (gn && gg) dWeight = Math.min(Math.max(l2norm(gn) / (l2norm(gg) + 1e-4), 0), 1e4) * this._s.discWeight;
    else if (this.training) throw new Error('adaptive GAN weight: the last layer is not in the graph of the losses (in training mode)');
    gn?.dispose();
    gg?.dispose();
    if (!gRec) return { g, dWeight, term: null };
    const scale = dWeight * f;
    const term = scale !== 0 ? T.sum(T.mul(recon, T.mul(gRec, scale))) : null;
    gRec.dispose();
    return { g: T.detach(g), dWeight, term };
  }

  /** loss + (term − term): the loss's value exactly, with term's gradient added (see generatorTerm). */
  protected static withTerm(loss: T.Tensor, term: T.Tensor | null): T.Tensor {
    return term ? T.add(loss, T.sub(term, T.detach(term))) : loss;
  }

  protected discInput(x: T.Tensor, cond: T.Tensor | null | undefined, detach: boolean): T.Tensor {
    const xi = detach ? T.detach(x) : x;
    if (cond) {
      if (!this._s.discConditional) throw new Error('GAN loss: cond given but disc_conditional is false');
      return T.concat([xi, cond], 1);
    }
    if (this._s.discConditional) throw new Error('GAN loss: disc_conditional is true but no cond was given');
    return xi;
  }

  protected discriminatorStep(inputs: T.Tensor, recon: T.Tensor, globalStep: number, cond: T.Tensor | null | undefined, split: string): LossStep {
    const real = this.discriminator.forward(this.discInput(inputs, cond, true));
    const fake = this.discriminator.forward(this.discInput(recon, cond, true));
    const f = adoptWeight(this._s.discFactor, globalStep, this._s.discStart);
    const dl = this._s.discLoss === 'hinge' ? hingeDLoss(real, fake) : vanillaDLoss(real, fake);
    const loss = T.mul(dl, f);
    return { loss, log: { [`${split}/disc_loss`]: loss.item(), [`${split}/logits_real`]: T.mean(real).item(), [`${split}/logits_fake`]: T.mean(fake).item() } };
  }
}

export interface KLLossSettings extends GanLossSettings {
  logvarInit?: number;
  klWeight?: number;
  pixelWeight?: number;
}

export class LPIPSWithDiscriminator extends GanLossBase {
  logvar: Parameter;
  readonly _klWeight: number;
  readonly _pixelWeight: number;

  constructor(s: KLLossSettings) {
    super(s);
    this.logvar = s.meta ? metaParameter([]) : new Parameter(T.full([], s.logvarInit ?? 0));
    this._klWeight = s.klWeight ?? 1;
    this._pixelWeight = s.pixelWeight ?? 1;
  }

  forward(
    inputs: T.Tensor, recon: T.Tensor, posterior: DiagonalGaussianDistribution, optimizerIdx: 0 | 1, globalStep: number,
    opts: GanLossForwardOptions & { weights?: T.Tensor | null } = {},
  ): LossStep {
    const split = opts.split ?? 'train';
    if (optimizerIdx === 1) return this.discriminatorStep(inputs, recon, globalStep, opts.cond, split);
    let rec = T.abs(T.sub(inputs, recon));
    const p = this._s.perceptualWeight > 0 ? this.perceptual_loss.forward(inputs, recon, opts.lpips) : null;
    if (p) rec = T.add(rec, T.mul(p, this._s.perceptualWeight));
    const B = inputs.shape[0];
    const nllMap = T.add(T.div(rec, T.exp(this.logvar)), this.logvar);
    const weighted = T.div(T.sum(opts.weights ? T.mul(opts.weights, nllMap) : nllMap), B);
    const nll = T.div(T.sum(nllMap), B);
    const kl = T.div(T.sum(posterior.kl()), B);
    const f = adoptWeight(this._s.discFactor, globalStep, this._s.discStart);
    const { g, dWeight, term } = this.generatorTerm(recon, nll, opts, this._s.discFactor > 0, f);
    const loss = GanLossBase.withTerm(T.add(T.add(weighted, T.mul(kl, this._klWeight)), T.mul(g, dWeight * f)), term);
    return {
      loss,
      pLoss: p,
      log: {
        [`${split}/total_loss`]: loss.item(), [`${split}/logvar`]: this.logvar.item(), [`${split}/kl_loss`]: kl.item(),
        [`${split}/nll_loss`]: nll.item(), [`${split}/rec_loss`]: T.mean(rec).item(), [`${split}/d_weight`]: dWeight,
        [`${split}/disc_factor`]: f, [`${split}/g_loss`]: g.item(),
      },
    };
  }
}

export interface VQLossSettings extends GanLossSettings {
  codebookWeight?: number;
  pixelWeight?: number;
  pixelLoss?: 'l1' | 'l2';
}

export class VQLPIPSWithDiscriminator extends GanLossBase {
  readonly _codebookWeight: number;
  readonly _pixelLoss: 'l1' | 'l2';

  constructor(s: VQLossSettings) {
    super(s);
    this._codebookWeight = s.codebookWeight ?? 1;
    this._pixelLoss = s.pixelLoss ?? 'l1';
  }

  forward(
    codebookLoss: T.Tensor | null, inputs: T.Tensor, recon: T.Tensor, optimizerIdx: 0 | 1, globalStep: number,
    opts: GanLossForwardOptions = {},
  ): LossStep {
    const split = opts.split ?? 'train';
    if (optimizerIdx === 1) return this.discriminatorStep(inputs, recon, globalStep, opts.cond, split);
    const cb = codebookLoss ?? T.zeros([1]);
    const diff = T.sub(inputs, recon);
    let rec = this._pixelLoss === 'l1' ? T.abs(diff) : T.square(diff);
    const p = this._s.perceptualWeight > 0 ? this.perceptual_loss.forward(inputs, recon, opts.lpips) : T.zeros([1]);
    if (this._s.perceptualWeight > 0) rec = T.add(rec, T.mul(p, this._s.perceptualWeight));
    const nll = T.mean(rec);
    const f = adoptWeight(this._s.discFactor, globalStep, this._s.discStart);
    const { g, dWeight, term } = this.generatorTerm(recon, nll, opts, true, f);
    const loss = GanLossBase.withTerm(T.add(T.add(nll, T.mul(g, dWeight * f)), T.mul(T.mean(cb), this._codebookWeight)), term);
    return {
      loss,
      pLoss: this._s.perceptualWeight > 0 ? p : null,
      log: {
        [`${split}/total_loss`]: loss.item(), [`${split}/quant_loss`]: T.mean(cb).item(), [`${split}/nll_loss`]: nll.item(),
        [`${split}/rec_loss`]: T.mean(rec).item(), [`${split}/p_loss`]: T.mean(p).item(), [`${split}/d_weight`]: dWeight,
        [`${split}/disc_factor`]: f, [`${split}/g_loss`]: g.item(),
      },
    };
  }
}

/** DummyLoss: an empty module (inpainting_big's first stage). */
export class DummyLoss extends Module {}
