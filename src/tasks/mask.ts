// Inpainting masks: a picture whose light pixels (gray ≥ 0.5, gray as PIL's "L" conversion) mark the
// region to fill. The same mask gives the pixel mask of the concat-conditioned models, the latent cells
// that latent-blend inpainting keeps, and the pixels pasted back from the input after decoding.

import * as T from '../engine/index.js';
import { imageToTensor, pilGray, type Image } from '../io/image.js';
import { TaskInputError, type TaskInput } from './errors.js';

/** [1, 1, H, W]: 1 where the mask asks for new pixels, 0 where the picture is kept. */
export function fillMask(mask: Image): T.Tensor {
  return T.noGrad(() => T.ge(imageToTensor(mask, 'gray', 'unit'), 0.5));
}

/** The mask must cover the picture exactly. */
export function checkMaskSize(picture: Image, mask: Image, pictureInput: TaskInput = 'image'): void {
  if (picture.width !== mask.width || picture.height !== mask.height) {
    throw new TaskInputError('mask', `the mask is ${mask.width}×${mask.height} but the ${pictureInput === 'initImage' ? 'initial image' : 'image'} is ${picture.width}×${picture.height}`);
  }
}

/**
 * [n, c, h, w]: 1 on the latent cells to keep — those none of whose f×f pixels is to be filled — for
 * latent-blend inpainting (the reference's DDIM mask/x0 arguments, ldm/models/diffusion/ddim.py).
 */
export function keptLatentMask(mask: Image, shape: number[]): T.Tensor {
  const [n, c, h] = shape;
  const f = mask.height / h;
  return T.noGrad(() => {
    const touched = T.ge(T.avgPool2d(fillMask(mask), f), 1e-6);
    return T.contiguous(T.expand(T.sub(1, touched), [n, c, touched.shape[2], touched.shape[3]]));
  });
}

/** The pixels outside the mask copied from the input picture, byte for byte (gray outputs get its PIL luma). */
export function pasteKnown(images: Image[], picture: Image, mask: Image): Image[] {
  const fill = T.contiguousData(fillMask(mask)) as Float32Array;
  const px = picture.width * picture.height, pc = picture.channels;
  return images.map((gen) => {
    const data = new Uint8Array(gen.data), gc = gen.channels;
    for (let i = 0; i < px; i++) {
      if (fill[i] === 1) continue;
      const [r, g, b] = pc >= 3 ? [picture.data[pc * i], picture.data[pc * i + 1], picture.data[pc * i + 2]] : [picture.data[pc * i], picture.data[pc * i], picture.data[pc * i]];
      if (gc === 1) data[i] = pilGray(r, g, b);
      else [data[gc * i], data[gc * i + 1], data[gc * i + 2]] = [r, g, b];
    }
    return { ...gen, data };
  });
}
