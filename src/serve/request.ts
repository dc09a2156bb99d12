// POST /api/jobs: the request body's JSON schema (checked by fastify before the handler runs) and the
// checks against the chosen model and the server's limits, giving the job spec a generation thread runs.

import { ddimTimesteps } from '../diffusion/schedules.js';
import { SAMPLERS, samplerSpec, type SamplerName } from '../diffusion/samplers/index.js';
import { HttpError, overLimit, type Limits } from './limits.js';
import { isInpaintingModel, type Mode, type ModelInfo } from './model-info.js';
import { decodeBase64Field, inspectImage, type Upload } from './upload.js';

export interface JobRequest {
  model?: string;
  mode?: Mode;
  class?: number;
  prompt?: string;
  negative_prompt?: string;
  sampler?: string;
  steps?: number;
  scale?: number;
  eta?: number;
  seed?: number;
  width?: number;
  height?: number;
  n?: number;
  /** base64 / data URL in JSON; raw bytes from multipart. */
  init_image?: string | Buffer;
  strength?: number;
  mask?: string | Buffer;
  /** Send x̂₀ previews in the progress events (default true). */
  preview?: boolean;
}

const image = { anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }] };

export const JOB_REQUEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 200 },
    mode: { type: 'string', enum: ['generate', 'img2img', 'inpaint'] },
    class: { type: 'integer', minimum: 0 },
    prompt: { type: 'string', maxLength: 1000 },
    negative_prompt: { type: 'string', maxLength: 1000 },
    sampler: { type: 'string', enum: [...SAMPLERS] },
    steps: { type: 'integer', minimum: 1 },
    scale: { type: 'number', minimum: 0, maximum: 100 },
    eta: { type: 'number', minimum: 0, maximum: 10 },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    width: { type: 'integer', minimum: 1 },
    height: { type: 'integer', minimum: 1 },
    n: { type: 'integer', minimum: 1 },
    init_image: image,
    strength: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    mask: image,
    preview: { type: 'boolean' },
  },
} as const;

/** What a generation thread needs to run a job (images still encoded; decoded in the thread). */
export interface JobSpec {
  model: string;
  mode: Mode;
  class?: number;
  prompt?: string;
  negativePrompt?: string;
  sampler: SamplerName;
  steps: number;
  scale: number;
  eta: number;
  seed: number;
  width: number;
  height: number;
  n: number;
  strength?: number;
  init?: Uint8Array;
  mask?: Uint8Array;
  preview: boolean;
}

/** The parameters of a job as shown to people (no image bytes). */
export function publicParams(s: JobSpec): Record<string, unknown> {
  const { init, mask, ...rest } = s;
  return { ...rest, ...(init ? { init_image: true } : {}), ...(mask ? { mask: true } : {}) };
}

function upload(v: string | Buffer | object | undefined, field: string, limits: Limits): Upload | undefined {
  if (v === undefined) return undefined;
  const bytes = typeof v === 'string' ? decodeBase64Field(v, field) : Buffer.isBuffer(v) ? v : null;
  if (!bytes) throw new HttpError(400, 'bad_request', `${field}: expected a base64 string or data URL (or a multipart file)`);
  if (bytes.length > limits.maxBodyBytes) throw overLimit('maxBodyBytes', `${field}: ${bytes.length} bytes; size`, bytes.length, limits);
  return inspectImage(bytes, field, limits);
}

const bad = (msg: string) => new HttpError(400, 'bad_request', msg);

/** Check a request against the model and the limits; throws HttpError naming the first problem. */
export function checkJobRequest(r: JobRequest, info: ModelInfo, limits: Limits): JobSpec {
  const init = upload(r.init_image, 'init_image', limits);
  const mask = upload(r.mask, 'mask', limits);
  const mode: Mode = r.mode ?? (isInpaintingModel(info) ? 'inpaint' : mask ? 'inpaint' : init ? 'img2img' : 'generate');
  if (!info.modes.includes(mode)) throw bad(`mode ${mode} is not available with model ${info.name} (${info.task}); it offers ${info.modes.join(', ')}`);
  if (mode !== 'generate' && !init) throw bad(`mode ${mode} needs init_image`);
  if (mode === 'inpaint' && !mask) throw bad('mode inpaint needs a mask (white = the region to fill)');
  if (mode === 'generate' && init) throw bad('init_image is for modes img2img and inpaint');
  if (mode !== 'inpaint' && mask) throw bad('mask is for mode inpaint');
  if (init && mask && (init.width !== mask.width || init.height !== mask.height)) throw bad(`the mask is ${mask.width}×${mask.height} but init_image is ${init.width}×${init.height}`);
  if (r.strength !== undefined && mode === 'generate') throw bad('strength is for modes img2img and inpaint');
  if (r.strength !== undefined && isInpaintingModel(info)) throw bad(`strength does not apply to model ${info.name}: an inpainting model always samples the masked region from noise`);

  if (info.classes) {
    if (r.class === undefined) throw bad(`model ${info.name} is class-conditional: give class (0…${info.classes.count - 1})`);
    if (r.class >= info.classes.count) throw bad(`class ${r.class} is outside model ${info.name}'s classes 0…${info.classes.count - 1}`);
  } else if (r.class !== undefined) throw bad(`class is for class-conditional models; model ${info.name} is a ${info.task} model`);
  if (info.text) {
    if (r.prompt === undefined || r.prompt.trim() === '') throw bad(`model ${info.name} is a ${info.task === 'text' ? 'text-to-image' : 'text-guided inpainting'} model: give a prompt`);
  } else {
    if (r.prompt !== undefined) throw bad(`prompt is for text-to-image models; model ${info.name} is a ${info.task} model`);
    if (r.negative_prompt !== undefined) throw bad(`negative_prompt is for text-to-image models; model ${info.name} is a ${info.task} model`);
  }

  const n = r.n ?? 1;
  if (n > limits.maxN) throw overLimit('maxN', 'n', n, limits);
  const width = init ? init.width : r.width ?? info.size.default;
  const height = init ? init.height : r.height ?? info.size.default;
  if (init && ((r.width !== undefined && r.width !== init.width) || (r.height !== undefined && r.height !== init.height))) {
    throw bad(`width/height do not apply with init_image (its size ${init.width}×${init.height} is used)`);
  }
  for (const [k, v] of [['width', width], ['height', height]] as const) {
    if (v > limits.maxSize) throw overLimit('maxSize', k, v, limits);
    if (v % info.size.multiple !== 0) throw bad(`${k} ${v} must be a multiple of ${info.size.multiple} for model ${info.name}; try ${Math.max(info.size.multiple, Math.round(v / info.size.multiple) * info.size.multiple)}`);
  }

  const sampler = (r.sampler ?? info.defaults.sampler) as SamplerName;
  const reads = samplerSpec(sampler).options as readonly string[];
  const strength = mode === 'generate' || isInpaintingModel(info) ? undefined : r.strength ?? (mode === 'inpaint' ? 1 : 0.75);
  let steps: number;
  if (!reads.includes('steps')) {
    if (r.steps !== undefined) throw bad(`steps does not apply to the ${sampler} sampler (it runs every timestep); use ddim with eta 1 for fewer steps`);
    steps = Math.max(1, Math.round((strength ?? 1) * info.numTimesteps));
    if (steps > limits.maxSteps) throw overLimit('maxSteps', `the ddpm sampler runs ${info.numTimesteps} timesteps; steps`, steps, limits);
  } else {
    steps = r.steps ?? info.defaults.steps;
    if (steps > limits.maxSteps) throw overLimit('maxSteps', 'steps', steps, limits);
    if (sampler === 'ddim' || sampler === 'plms') {
      try {
        ddimTimesteps('uniform', steps, info.numTimesteps);
      } catch (e) {
        throw bad(`steps ${steps}: ${(e as Error).message}`);
      }
    }
  }
  if (r.eta !== undefined && !reads.includes('eta')) throw bad(`eta does not apply to the ${sampler} sampler`);
  const eta = r.eta ?? (!reads.includes('eta') ? 0 : sampler === 'ddim' ? info.defaults.eta : samplerSpec(sampler).defaults.eta ?? 0);
  const scale = r.scale ?? info.defaults.scale;
  if (scale !== 1 && info.classes && info.classes.uncond === null) throw bad(`guidance (scale ≠ 1) needs a "no class" label, and model ${info.name} has none; use scale 1`);
  if (scale !== 1 && !info.classes && !info.text) throw bad(`scale applies to class- and text-conditional models; model ${info.name} is a ${info.task} model`);

  return {
    model: info.name, mode, class: r.class, prompt: r.prompt, negativePrompt: r.negative_prompt, sampler, steps, scale, eta,
    seed: r.seed ?? Math.floor(Math.random() * 2 ** 31), width, height, n, strength,
    init: init?.bytes, mask: mask?.bytes, preview: r.preview ?? true,
  };
}
