// What the `__is_first_stage__` sentinel of a config builds to: the LatentDiffusion builder then reuses its
// first stage as the conditioning stage (ldm/models/diffusion/ddpm.py, instantiate_cond_stage).
export const FIRST_STAGE = Symbol('__is_first_stage__');
