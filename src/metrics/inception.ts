// The FID Inception-v3 (pytorch-fid's src/pytorch_fid/inception.py, `fid_inception_v3` with the weights
// ported from TensorFlow's inception-2015-12-05 graph, file `pt_inception-2015-12-05-6726825d.pth`),
// up to the final average pool: [B, 3, H, W] → pool3 features [B, 2048].
//
// It is torchvision's Inception3 (BasicConv2d = conv without bias → BatchNorm(eps 0.001) → ReLU) with the
// FID patches: Mixed_5b–5d (FIDInceptionA), 6b–6e (FIDInceptionC) and 7b (FIDInceptionE_1) average-pool
// their pool branch with count_include_pad=False (TensorFlow's pooling), and 7c (FIDInceptionE_2) max-pools
// it instead. Input handling as pytorch-fid's InceptionV3(resize_input=True, normalize_input=True):
// images in [0, 1] are resized to 299×299 (bilinear, align_corners=False) and mapped to 2x − 1. Our
// FeatureNet receives [-1, 1] images, so they are taken to [0, 1] first; grayscale images are repeated
// to three channels (PIL's convert('RGB') of an 'L' image, which fid_score.py's loader applies).

import * as T from '../engine/index.js';
import { BatchNorm2d, Conv2d, Module } from '../nn/index.js';
import type { LayerOptions } from '../nn/layers.js';
import { readCheckpoint } from '../io/ckpt.js';
import { valuesOf, type FeatureNet } from './feature-net.js';
import { avgPool2dExcludePad, maxPool2d } from './pool.js';

export const FID_WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth';
export const FID_WEIGHTS_URL = `https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/${FID_WEIGHTS_FILE}`;

type K2 = number | [number, number];

class BasicConv2d extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  constructor(cin: number, cout: number, kernel: K2, opts: { stride?: number; padding?: K2 } & LayerOptions = {}) {
    super();
    const pad = opts.padding ?? 0;
    this.conv = new Conv2d(cin, cout, kernel, { stride: opts.stride ?? 1, padding: typeof pad === 'number' ? pad : [pad[0], pad[1]], bias: false, gen: opts.gen });
    this.bn = new BatchNorm2d(cout, 0.001);
  }
  forward(x: T.Tensor): T.Tensor {
    return T.relu(this.bn.forward(this.conv.forward(x)));
  }
}

const avgBranch = (x: T.Tensor) => avgPool2dExcludePad(x, 3, 1, 1);

/** FIDInceptionA: 1×1, 5×5, double 3×3 and (TF average) pool branches → 224 + pool_features channels. */
class InceptionA extends Module {
  branch1x1; branch5x5_1; branch5x5_2; branch3x3dbl_1; branch3x3dbl_2; branch3x3dbl_3; branch_pool;
  constructor(cin: number, poolFeatures: number, o: LayerOptions) {
    super();
    this.branch1x1 = new BasicConv2d(cin, 64, 1, o);
    this.branch5x5_1 = new BasicConv2d(cin, 48, 1, o);
    this.branch5x5_2 = new BasicConv2d(48, 64, 5, { ...o, padding: 2 });
    this.branch3x3dbl_1 = new BasicConv2d(cin, 64, 1, o);
    this.branch3x3dbl_2 = new BasicConv2d(64, 96, 3, { ...o, padding: 1 });
    this.branch3x3dbl_3 = new BasicConv2d(96, 96, 3, { ...o, padding: 1 });
    this.branch_pool = new BasicConv2d(cin, poolFeatures, 1, o);
  }
  forward(x: T.Tensor): T.Tensor {
    const b5 = this.branch5x5_2.forward(this.branch5x5_1.forward(x));
    const b3 = this.branch3x3dbl_3.forward(this.branch3x3dbl_2.forward(this.branch3x3dbl_1.forward(x)));
    return T.concat([this.branch1x1.forward(x), b5, b3, this.branch_pool.forward(avgBranch(x))], 1);
  }
}

/** InceptionB (Mixed_6a, grid reduction): 3×3/2, double 3×3 ending /2, and a 3×3/2 max pool. */
class InceptionB extends Module {
  branch3x3; branch3x3dbl_1; branch3x3dbl_2; branch3x3dbl_3;
  constructor(cin: number, o: LayerOptions) {
    super();
    this.branch3x3 = new BasicConv2d(cin, 384, 3, { ...o, stride: 2 });
    this.branch3x3dbl_1 = new BasicConv2d(cin, 64, 1, o);
    this.branch3x3dbl_2 = new BasicConv2d(64, 96, 3, { ...o, padding: 1 });
    this.branch3x3dbl_3 = new BasicConv2d(96, 96, 3, { ...o, stride: 2 });
  }
  forward(x: T.Tensor): T.Tensor {
    const b3 = this.branch3x3dbl_3.forward(this.branch3x3dbl_2.forward(this.branch3x3dbl_1.forward(x)));
    return T.concat([this.branch3x3.forward(x), b3, maxPool2d(x, 3, 2)], 1);
  }
}

/** FIDInceptionC: factorised 7×7 branches (1×7 / 7×1) → 768 channels. */
class InceptionC extends Module {
  branch1x1; branch7x7_1; branch7x7_2; branch7x7_3;
  branch7x7dbl_1; branch7x7dbl_2; branch7x7dbl_3; branch7x7dbl_4; branch7x7dbl_5; branch_pool;
  constructor(cin: number, c7: number, o: LayerOptions) {
    super();
    const row = { ...o, padding: [0, 3] as K2 }, col = { ...o, padding: [3, 0] as K2 };
    this.branch1x1 = new BasicConv2d(cin, 192, 1, o);
    this.branch7x7_1 = new BasicConv2d(cin, c7, 1, o);
    this.branch7x7_2 = new BasicConv2d(c7, c7, [1, 7], row);
    this.branch7x7_3 = new BasicConv2d(c7, 192, [7, 1], col);
    this.branch7x7dbl_1 = new BasicConv2d(cin, c7, 1, o);
    this.branch7x7dbl_2 = new BasicConv2d(c7, c7, [7, 1], col);
    this.branch7x7dbl_3 = new BasicConv2d(c7, c7, [1, 7], row);
    this.branch7x7dbl_4 = new BasicConv2d(c7, c7, [7, 1], col);
    this.branch7x7dbl_5 = new BasicConv2d(c7, 192, [1, 7], row);
    this.branch_pool = new BasicConv2d(cin, 192, 1, o);
  }
  forward(x: T.Tensor): T.Tensor {
    const b7 = this.branch7x7_3.forward(this.branch7x7_2.forward(this.branch7x7_1.forward(x)));
    let d = this.branch7x7dbl_1.forward(x);
    for (const m of [this.branch7x7dbl_2, this.branch7x7dbl_3, this.branch7x7dbl_4, this.branch7x7dbl_5]) d = m.forward(d);
    return T.concat([this.branch1x1.forward(x), b7, d, this.branch_pool.forward(avgBranch(x))], 1);
  }
}

/** InceptionD (Mixed_7a, grid reduction) → 1280 channels. */
class InceptionD extends Module {
  branch3x3_1; branch3x3_2; branch7x7x3_1; branch7x7x3_2; branch7x7x3_3; branch7x7x3_4;
  constructor(cin: number, o: LayerOptions) {
    super();
    this.branch3x3_1 = new BasicConv2d(cin, 192, 1, o);
    this.branch3x3_2 = new BasicConv2d(192, 320, 3, { ...o, stride: 2 });
    this.branch7x7x3_1 = new BasicConv2d(cin, 192, 1, o);
    this.branch7x7x3_2 = new BasicConv2d(192, 192, [1, 7], { ...o, padding: [0, 3] });
    this.branch7x7x3_3 = new BasicConv2d(192, 192, [7, 1], { ...o, padding: [3, 0] });
    this.branch7x7x3_4 = new BasicConv2d(192, 192, 3, { ...o, stride: 2 });
  }
  forward(x: T.Tensor): T.Tensor {
    const b3 = this.branch3x3_2.forward(this.branch3x3_1.forward(x));
    let b7 = this.branch7x7x3_1.forward(x);
    for (const m of [this.branch7x7x3_2, this.branch7x7x3_3, this.branch7x7x3_4]) b7 = m.forward(b7);
    return T.concat([b3, b7, maxPool2d(x, 3, 2)], 1);
  }
}

/** FIDInceptionE_1 (pool = TF average) / FIDInceptionE_2 (pool = 3×3 max, stride 1, padding 1) → 2048 channels. */
class InceptionE extends Module {
  branch1x1; branch3x3_1; branch3x3_2a; branch3x3_2b; branch3x3dbl_1; branch3x3dbl_2; branch3x3dbl_3a; branch3x3dbl_3b; branch_pool;
  constructor(cin: number, readonly _maxPool: boolean, o: LayerOptions) {
    super();
    const row = { ...o, padding: [0, 1] as K2 }, col = { ...o, padding: [1, 0] as K2 };
    this.branch1x1 = new BasicConv2d(cin, 320, 1, o);
    this.branch3x3_1 = new BasicConv2d(cin, 384, 1, o);
    this.branch3x3_2a = new BasicConv2d(384, 384, [1, 3], row);
    this.branch3x3_2b = new BasicConv2d(384, 384, [3, 1], col);
    this.branch3x3dbl_1 = new BasicConv2d(cin, 448, 1, o);
    this.branch3x3dbl_2 = new BasicConv2d(448, 384, 3, { ...o, padding: 1 });
    this.branch3x3dbl_3a = new BasicConv2d(384, 384, [1, 3], row);
    this.branch3x3dbl_3b = new BasicConv2d(384, 384, [3, 1], col);
    this.branch_pool = new BasicConv2d(cin, 192, 1, o);
  }
  forward(x: T.Tensor): T.Tensor {
    const s = this.branch3x3_1.forward(x);
    const b3 = T.concat([this.branch3x3_2a.forward(s), this.branch3x3_2b.forward(s)], 1);
    const dd = this.branch3x3dbl_2.forward(this.branch3x3dbl_1.forward(x));
    const bd = T.concat([this.branch3x3dbl_3a.forward(dd), this.branch3x3dbl_3b.forward(dd)], 1);
    const pooled = this._maxPool ? maxPool2d(x, 3, 1, 1) : avgBranch(x);
    return T.concat([this.branch1x1.forward(x), b3, bd, this.branch_pool.forward(pooled)], 1);
  }
}

/** The FID Inception trunk under torchvision's attribute names (the keys of pt_inception-2015-12-05). */
export class FidInceptionV3 extends Module {
  Conv2d_1a_3x3; Conv2d_2a_3x3; Conv2d_2b_3x3; Conv2d_3b_1x1; Conv2d_4a_3x3;
  Mixed_5b; Mixed_5c; Mixed_5d; Mixed_6a; Mixed_6b; Mixed_6c; Mixed_6d; Mixed_6e; Mixed_7a; Mixed_7b; Mixed_7c;
  constructor(o: LayerOptions = {}) {
    super();
    this.Conv2d_1a_3x3 = new BasicConv2d(3, 32, 3, { ...o, stride: 2 });
    this.Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3, o);
    this.Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, { ...o, padding: 1 });
    this.Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1, o);
    this.Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3, o);
    this.Mixed_5b = new InceptionA(192, 32, o);
    this.Mixed_5c = new InceptionA(256, 64, o);
    this.Mixed_5d = new InceptionA(288, 64, o);
    this.Mixed_6a = new InceptionB(288, o);
    this.Mixed_6b = new InceptionC(768, 128, o);
    this.Mixed_6c = new InceptionC(768, 160, o);
    this.Mixed_6d = new InceptionC(768, 160, o);
    this.Mixed_6e = new InceptionC(768, 192, o);
    this.Mixed_7a = new InceptionD(768, o);
    this.Mixed_7b = new InceptionE(1280, false, o);
    this.Mixed_7c = new InceptionE(2048, true, o);
    this.eval();
  }

  /** [B, 3, 299, 299] already scaled to [-1, 1] → [B, 2048] (the adaptive average pool of Mixed_7c). */
  pool3(x: T.Tensor): T.Tensor {
    let h = this.Conv2d_2b_3x3.forward(this.Conv2d_2a_3x3.forward(this.Conv2d_1a_3x3.forward(x)));
    h = maxPool2d(h, 3, 2);
    h = maxPool2d(this.Conv2d_4a_3x3.forward(this.Conv2d_3b_1x1.forward(h)), 3, 2);
    for (const m of [this.Mixed_5b, this.Mixed_5c, this.Mixed_5d, this.Mixed_6a, this.Mixed_6b, this.Mixed_6c, this.Mixed_6d, this.Mixed_6e, this.Mixed_7a, this.Mixed_7b, this.Mixed_7c]) {
      h = m.forward(h);
    }
    return T.mean(h, [2, 3]);
  }
}

/** pytorch-fid's input path for [-1, 1] images: → [0, 1], gray → RGB, bilinear resize to 299, → 2x − 1. */
export function fidInceptionInput(images: T.Tensor): T.Tensor {
  if (images.ndim !== 4 || (images.shape[1] !== 1 && images.shape[1] !== 3)) throw new RangeError(`inception: expected images [B, 1 or 3, H, W], got [${images.shape}]`);
  let x = T.mulScalar(T.addScalar(images, 1), 0.5);
  if (x.shape[1] === 1) x = T.concat([x, x, x], 1);
  if (x.shape[2] !== 299 || x.shape[3] !== 299) x = T.interpolateBilinear(x, [299, 299]);
  return T.addScalar(T.mulScalar(x, 2), -1);
}

/** Keys in the weights file that the pool3 trunk does not use (the 1008-way classifier). */
const UNUSED_KEYS = /^fc\.(weight|bias)$/;

/**
 * Load pt_inception-2015-12-05 weights (.pth or .safetensors) into `net`. Every conv / BatchNorm tensor
 * must be present with its shape; `fc.*` is accepted and ignored, `*.num_batches_tracked` is optional
 * (PyTorch fills it in when absent); any other key is an error naming it.
 */
export function loadFidInceptionWeights(net: FidInceptionV3, file: string): void {
  const ck = readCheckpoint(file);
  try {
    const own = net.stateDict();
    const missing: string[] = [], unexpected: string[] = [], misshaped: string[] = [];
    for (const [k, t] of own) {
      const src = ck.stateDict.get(k);
      if (!src) {
        if (!k.endsWith('.num_batches_tracked')) missing.push(k);
      } else if (!T.sameShape(src.shape, t.shape)) misshaped.push(`${k}: file [${src.shape}], expected [${t.shape}]`);
    }
    for (const k of ck.stateDict.keys()) if (!own.has(k) && !UNUSED_KEYS.test(k)) unexpected.push(k);
    if (missing.length || unexpected.length || misshaped.length) {
      const list = (what: string, xs: string[]) => (xs.length ? [`  ${xs.length} ${what}: ${xs.slice(0, 8).join(', ')}${xs.length > 8 ? ', …' : ''}`] : []);
      throw new Error([`${file}: not the FID Inception weights (${FID_WEIGHTS_FILE}):`, ...list('missing key(s)', missing), ...list('unexpected key(s)', unexpected), ...list('shape mismatch(es)', misshaped)].join('\n'));
    }
    for (const [k, t] of own) ck.stateDict.get(k)?.readInto(t, k);
  } finally {
    ck.close();
  }
}

export function missingInceptionWeightsMessage(): string {
  return `FID in Inception features needs the FID Inception-v3 weights, which cannot be downloaded here: get ${FID_WEIGHTS_FILE} from ${FID_WEIGHTS_URL} (pytorch-fid's release; a .safetensors conversion via \`ldm convert\` works too) and pass it as --inception-weights <file>`;
}

/** The FID Inception as a FeatureNet (2048-d pool3). `weights`: the file, or null for random weights (tests only). */
export class InceptionFeatureNet implements FeatureNet {
  readonly name = 'inception-v3-pool3';
  readonly dim = 2048;
  readonly net: FidInceptionV3;
  constructor(weights: string | null, opts: LayerOptions = {}) {
    this.net = new FidInceptionV3(opts);
    if (weights) loadFidInceptionWeights(this.net, weights);
  }
  features(images: T.Tensor): Float32Array {
    return valuesOf(() => this.net.pool3(fidInceptionInput(images)));
  }
}
