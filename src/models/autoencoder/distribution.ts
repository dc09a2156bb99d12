// DiagonalGaussianDistribution (ldm/modules/distributions/distributions.py): the KL autoencoder's posterior.
//
//   mean, logvar = chunk(parameters, 2, dim=1)       (first half of the channels is the mean)
//   logvar = clamp(logvar, -30, 20); std = exp(logvar/2); var = exp(logvar)
//   sample() = mean + std · ε,  ε ~ N(0, I)           (the reference draws ε from torch's CPU generator;
//                                                       pass ε to reproduce a given draw)
//   kl()     = ½ Σ_{c,h,w} (mean² + var − 1 − logvar)
//   kl(o)    = ½ Σ ((mean − o.mean)²/o.var + var/o.var − 1 − logvar + o.logvar)
//   nll(x)   = ½ Σ_dims (log 2π + logvar + (x − mean)²/var)

import * as T from '../../engine/index.js';

export class DiagonalGaussianDistribution {
  readonly mean: T.Tensor;
  readonly logvar: T.Tensor;
  readonly std: T.Tensor;
  readonly var: T.Tensor;

  constructor(readonly parameters: T.Tensor, readonly deterministic = false) {
    if (parameters.ndim < 2 || parameters.shape[1] % 2 !== 0) {
      throw new RangeError(`DiagonalGaussianDistribution: expected [B, 2C, ...] moments, got [${parameters.shape}]`);
    }
    const [mean, logvar] = T.chunk(parameters, 2, 1);
    this.mean = mean;
    this.logvar = T.clamp(logvar, -30, 20);
    if (deterministic) {
      this.std = T.zeros(this.mean.shape, this.mean.dtype);
      this.var = T.zeros(this.mean.shape, this.mean.dtype);
    } else {
      this.std = T.exp(T.mul(this.logvar, 0.5));
      this.var = T.exp(this.logvar);
    }
  }

  /** mean + std · noise; noise defaults to N(0, I) from `gen` (or the engine's default generator). */
  sample(noise?: T.Tensor | T.Generator): T.Tensor {
    const eps = noise instanceof T.Tensor ? noise : T.randn(this.mean.shape, noise ?? T.defaultGenerator, this.mean.dtype);
    if (!T.sameShape(eps.shape, this.mean.shape)) throw new RangeError(`DiagonalGaussianDistribution.sample: noise [${eps.shape}] does not match mean [${this.mean.shape}]`);
    return T.add(this.mean, T.mul(this.std, eps));
  }

  mode(): T.Tensor {
    return this.mean;
  }

  /** KL divergence to N(0, I) (or to `other`) per batch element, summed over dims 1..3 → [B]. */
  kl(other?: DiagonalGaussianDistribution): T.Tensor {
    if (this.deterministic) return T.zeros([1], this.mean.dtype);
    const dims = [1, 2, 3];
    if (!other) {
      const s = T.sub(T.sub(T.add(T.square(this.mean), this.var), 1), this.logvar);
      return T.mul(T.sum(s, dims), 0.5);
    }
    const a = T.div(T.square(T.sub(this.mean, other.mean)), other.var);
    const s = T.add(T.sub(T.sub(T.add(a, T.div(this.var, other.var)), 1), this.logvar), other.logvar);
    return T.mul(T.sum(s, dims), 0.5);
  }

  /** Negative log-likelihood of `x` summed over `dims` → [B]. */
  nll(x: T.Tensor, dims: number[] = [1, 2, 3]): T.Tensor {
    if (this.deterministic) return T.zeros([1], this.mean.dtype);
    const s = T.add(T.add(this.logvar, Math.log(2 * Math.PI)), T.div(T.square(T.sub(x, this.mean)), this.var));
    return T.mul(T.sum(s, dims), 0.5);
  }
}
