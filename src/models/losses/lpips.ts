// LPIPS perceptual distance (taming/modules/losses/lpips.py, after richzhang/PerceptualSimilarity), the
// network only: its weights (VGG16 features + the 1×1 "lin" heads) are supplied by the user — e.g. a
// first-stage checkpoint trained with the perceptual loss carries them under `loss.perceptual_loss.*`.
//
//   x̂ = (x − shift) / scale,  shift = [−.030, −.088, −.188], scale = [.458, .448, .450]   (buffers)
//   VGG16 features, split after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (slice1..slice5 keep
//   torchvision's layer indices: slice1.0, slice1.2, slice2.5, slice2.7, slice3.10, ...)
//   for each of the 5 taps: f = feat / (‖feat‖₂ over channels + 1e-10); d = (f₀ − f₁)²
//   LPIPS = Σ_k mean_{h,w} lin_k(d_k)   with lin_k = [Dropout], conv1×1(C_k → 1, no bias)   → [B, 1, 1, 1]

import * as T from '../../engine/index.js';
import { readCheckpoint, type Checkpoint, type LazyTensor } from '../../io/ckpt.js';
import { Buffer, Dropout, Layer, Module, ReLU, Sequential } from '../../nn/index.js';
import { Builder, isMeta, type BuildOptions } from '../../nn/build.js';

export const LPIPS_SHIFT = [-0.03, -0.088, -0.188];
export const LPIPS_SCALE = [0.458, 0.448, 0.45];
const VGG_CHANNELS = [64, 128, 256, 512, 512];

export class ScalingLayer extends Layer {
  shift: Buffer;
  scale: Buffer;
  constructor() {
    super();
    this.shift = new Buffer(T.tensor(new Float32Array(LPIPS_SHIFT), [1, 3, 1, 1]));
    this.scale = new Buffer(T.tensor(new Float32Array(LPIPS_SCALE), [1, 3, 1, 1]));
  }
  forward(x: T.Tensor): T.Tensor {
    return T.div(T.sub(x, this.shift), this.scale);
  }
}

/** 2×2 max pooling, stride 2 (MaxPool2d(2, 2); odd trailing rows/columns are dropped). */
export class MaxPool2x2 extends Layer {
  forward(x: T.Tensor): T.Tensor {
    return T.maxPool2x2(x);
  }
}

/** An nn.Sequential whose children keep arbitrary integer names (torchvision's feature indices). */
export class IndexedSequential extends Layer {
  readonly _order: number[] = [];
  constructor(entries: [number, Layer][]) {
    super();
    for (const [i, l] of entries) {
      (this as unknown as Record<number, Layer>)[i] = l;
      this._order.push(i);
    }
  }
  forward(x: T.Tensor): T.Tensor {
    for (const i of this._order) x = (this as unknown as Record<number, Layer>)[i].forward(x);
    return x;
  }
}

/** VGG16 `features` split into the five LPIPS slices; forward returns the five relu outputs. */
export class VGG16Features extends Module {
  slice1: IndexedSequential;
  slice2: IndexedSequential;
  slice3: IndexedSequential;
  slice4: IndexedSequential;
  slice5: IndexedSequential;

  constructor(opts: BuildOptions = {}) {
    super();
    const b = new Builder(opts);
    // torchvision vgg16 "D": 64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512,M
    const cfg: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512];
    const layers: Layer[] = [];
    let c = 3;
    for (const v of cfg) {
      if (v === 'M') layers.push(new MaxPool2x2());
      else {
        layers.push(b.conv2d(c, v, 3, { padding: 1 }), new ReLU());
        c = v;
      }
    }
    const cut = (a: number, b: number) => new IndexedSequential(layers.slice(a, b).map((l, k) => [a + k, l] as [number, Layer]));
    this.slice1 = cut(0, 4);
    this.slice2 = cut(4, 9);
    this.slice3 = cut(9, 16);
    this.slice4 = cut(16, 23);
    this.slice5 = cut(23, 30);
  }

  forward(x: T.Tensor): T.Tensor[] {
    const outs: T.Tensor[] = [];
    let h = x;
    for (const s of [this.slice1, this.slice2, this.slice3, this.slice4, this.slice5]) {
      h = s.forward(h);
      outs.push(h);
    }
    return outs;
  }
}

export class NetLinLayer extends Module {
  model: Sequential;
  constructor(chIn: number, useDropout: boolean, opts: BuildOptions = {}) {
    super();
    const conv = new Builder(opts).conv2d(chIn, 1, 1, { bias: false });
    this.model = new Sequential(useDropout ? [new Dropout(0.5), conv] : [conv]);
  }
}

/** x / (‖x‖₂ over channels + eps). */
export function normalizeTensor(x: T.Tensor, eps = 1e-10): T.Tensor {
  const n = T.sqrt(T.sum(T.square(x), 1, true));
  return T.div(x, T.add(n, eps));
}

export class LPIPS extends Module {
  scaling_layer = new ScalingLayer();
  net: VGG16Features;
  lin0: NetLinLayer;
  lin1: NetLinLayer;
  lin2: NetLinLayer;
  lin3: NetLinLayer;
  lin4: NetLinLayer;

  constructor(useDropout = true, opts: BuildOptions = {}) {
    super();
    this.net = new VGG16Features(opts);
    [this.lin0, this.lin1, this.lin2, this.lin3, this.lin4] = VGG_CHANNELS.map((c) => new NetLinLayer(c, useDropout, opts));
    // The reference freezes LPIPS and keeps it in eval mode (dropout off).
    for (const p of this.parameters()) p.requiresGrad = false;
    this.eval();
  }

  /**
   * Perceptual distance between images in [-1, 1]: [B, 3, H, W] × 2 → [B, 1, 1, 1]. In training mode the
   * lin heads' Dropout(0.5) is active (the reference trains with it on: Lightning's train() undoes the
   * loss module's eval()); its keep masks are drawn from `gen`, or given in `keepMasks` (lin0..lin4, 1 = kept,
   * shaped like the squared feature differences) to replay a recorded draw.
   */
  forward(input: T.Tensor, target: T.Tensor, opts: LpipsDropoutOptions = {}): T.Tensor {
    const outs0 = this.net.forward(this.scaling_layer.forward(input));
    const outs1 = this.net.forward(this.scaling_layer.forward(target));
    const lins = [this.lin0, this.lin1, this.lin2, this.lin3, this.lin4];
    if (opts.keepMasks && opts.keepMasks.length !== lins.length) throw new RangeError(`LPIPS: ${opts.keepMasks.length} dropout keep masks given, expected ${lins.length} (lin0..lin4)`);
    let val: T.Tensor | null = null;
    for (let k = 0; k < lins.length; k++) {
      let d = T.square(T.sub(normalizeTensor(outs0[k]), normalizeTensor(outs1[k])));
      const layers = [...lins[k].model];
      const conv = layers.at(-1)!;
      const drop = layers.length > 1 ? (layers[0] as Dropout) : null;
      if (drop && drop.training && drop.p > 0) {
        const m = opts.keepMasks?.[k];
        if (m) {
          if (!T.sameShape(m.shape, d.shape)) throw new RangeError(`LPIPS: keep mask ${k} has shape [${m.shape}], lin${k}'s input is [${d.shape}]`);
          d = T.mul(d, T.mulScalar(T.cast(m, d.dtype), 1 / (1 - drop.p)));
        } else d = T.dropout(d, drop.p, true, opts.gen ?? T.defaultGenerator);
      }
      const r = T.mean(conv.forward(d), [2, 3], true);
      val = val ? T.add(val, r) : r;
    }
    return val!;
  }
}

/** How LPIPS draws (or replays) its training-mode dropout. */
export interface LpipsDropoutOptions {
  /** Random stream for the keep masks (default: the engine's generator). */
  gen?: T.Generator;
  /** Recorded keep masks for lin0..lin4 (nonzero = kept). */
  keepMasks?: T.Tensor[];
}

/** Where each torchvision `features.{i}` layer lives in the LPIPS trunk. */
function vggSlice(i: number): number {
  return i < 4 ? 1 : i < 9 ? 2 : i < 16 ? 3 : i < 23 ? 4 : 5;
}

/**
 * Load user-supplied LPIPS weights into `lp`:
 *   - `vgg16`: torchvision's VGG16 weights (`features.{i}.weight/bias`; `classifier.*` is ignored), and
 *   - `lin`:   the LPIPS heads (`lin{k}.model.1.weight`, taming's "vgg_lpips" / PerceptualSimilarity's vgg.pth),
 * or one `full` file holding the whole module (`net.slice…`, `lin…`, e.g. extracted from a first-stage
 * checkpoint with prefix `loss.perceptual_loss.`, given as `prefix`). Throws naming any missing weight.
 */
export function loadLpipsWeights(lp: LPIPS, files: { vgg16?: string; lin?: string; full?: string; prefix?: string }): void {
  const merged = new Map<string, LazyTensor>();
  const opened: Checkpoint[] = [];
  try {
    if (files.full) {
      const c = readCheckpoint(files.full);
      opened.push(c);
      const pre = files.prefix ?? '';
      for (const [k, v] of c.stateDict) if (k.startsWith(pre)) merged.set(k.slice(pre.length), v);
    }
    if (files.vgg16) {
      const c = readCheckpoint(files.vgg16);
      opened.push(c);
      for (const [k, v] of c.stateDict) {
        const m = /^features\.(\d+)\.(weight|bias)$/.exec(k);
        if (m) merged.set(`net.slice${vggSlice(Number(m[1]))}.${m[1]}.${m[2]}`, v);
      }
    }
    if (files.lin) {
      const c = readCheckpoint(files.lin);
      opened.push(c);
      for (const [k, v] of c.stateDict) if (/^lin\d\.model\.\d\.weight$/.test(k)) merged.set(k, v);
    }
    const source = [files.full, files.vgg16, files.lin].filter(Boolean).join(' + ') || 'LPIPS weights';
    // Check completeness first (nothing is written unless every weight is there); the scaling constants
    // are fixed buffers and not required from the files.
    const missing: string[] = [], misshaped: string[] = [];
    for (const [k, t] of lp.stateDict()) {
      if (k.startsWith('scaling_layer.')) continue;
      const src = merged.get(k);
      if (!src) missing.push(k);
      else if (!T.sameShape(src.shape, t.shape)) misshaped.push(`${k} [${src.shape}] vs [${t.shape}]`);
    }
    if (missing.length || misshaped.length) {
      throw new Error(`${source}: LPIPS weights incomplete: ${missing.length} missing (${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', …' : ''})${misshaped.length ? `, ${misshaped.length} mis-shaped (${misshaped[0]})` : ''}`);
    }
    for (const [k, t] of lp.stateDict()) {
      if (isMeta(t)) throw new Error(`${source}: cannot load weights into a shape-only (meta) build (${k} has no storage); build the model without { meta: true }`);
    }
    for (const [k, t] of lp.stateDict()) merged.get(k)?.readInto(t, k);
  } finally {
    for (const c of opened) c.close();
  }
}
