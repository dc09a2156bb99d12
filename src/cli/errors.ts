// Which errors are the user's input (exit status 2, refused before any work) rather than a failure while
// running (1): the usage errors of the option tables and the typed errors the readers, the loader and the
// tasks throw about what they were given.

import { CheckpointError } from '../io/ckpt.js';
import { ConfigError } from '../io/config.js';
import { ImageError } from '../io/image-check.js';
import { UnpicklingError } from '../io/pickle.js';
import { SafetensorsError } from '../io/safetensors.js';
import { ZipError } from '../io/zip.js';
import { ModelFilesError } from '../loader/model.js';
import { TaskError } from '../tasks/errors.js';
import { UsageError } from './args.js';

/** Exit statuses of every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const INPUT_ERRORS = [UsageError, ModelFilesError, TaskError, ConfigError, ImageError, CheckpointError, SafetensorsError, ZipError, UnpicklingError];

/** Whether an error is about the command's input (its message then stands for itself). */
export function isInputError(e: unknown): e is Error {
  return INPUT_ERRORS.some((c) => e instanceof c);
}

export const EXIT_STATUS_HELP = 'exit status: 0 done, 1 failed while running, 2 bad input (refused before any work), 130 (killed by SIGINT) interrupted';
