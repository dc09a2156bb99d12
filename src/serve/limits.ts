// What one server accepts: image side, sampler steps, samples per job, queue length and upload sizes.
// Every limit has a default and a command-line option (see src/cli/serve.ts); requests over a limit are
// answered with a 4xx JSON error naming the limit, before any work is queued.

export interface Limits {
  /** Largest image side in pixels (requests and uploads). */
  maxSize: number;
  /** Most sampler steps (for DDPM: the timesteps it would run). */
  maxSteps: number;
  /** Most samples per job. */
  maxN: number;
  /** Most jobs waiting per model (running jobs not counted). */
  maxQueue: number;
  /** Largest request body in bytes (JSON with base64 images, or multipart). */
  maxBodyBytes: number;
  /** Largest decoded pixel count of an uploaded image (declared in its header; checked before decoding). */
  maxUploadPixels: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxSize: 512,
  maxSteps: 1000,
  maxN: 4,
  maxQueue: 32,
  maxBodyBytes: 8 * 1024 * 1024,
  maxUploadPixels: 1024 * 1024,
};

/** The option that sets each limit, for error messages. */
export const LIMIT_OPTION: Record<keyof Limits, string> = {
  maxSize: '--max-size',
  maxSteps: '--max-steps',
  maxN: '--max-n',
  maxQueue: '--max-queue',
  maxBodyBytes: '--max-body',
  maxUploadPixels: '--max-upload-pixels',
};

/** A client error: HTTP status, a short machine code and a sentence for people. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

export function overLimit(limit: keyof Limits, what: string, value: number, limits: Limits): HttpError {
  return new HttpError(limit === 'maxQueue' ? 429 : limit === 'maxBodyBytes' || limit === 'maxUploadPixels' ? 413 : 400, 'over_limit',
    `${what} ${value} is over this server's limit of ${limits[limit]} (${LIMIT_OPTION[limit]})`, { limit, max: limits[limit] });
}
