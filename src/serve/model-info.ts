// What a loaded model can do, as GET /api/models reports it and as requests are checked against:
// its task, classes (with names), whether it takes text, image sizes and samplers.

import { existsSync, readFileSync } from 'node:fs';
import type { LatentDiffusion } from '../diffusion/latent-diffusion.js';
import { SAMPLER_TABLE } from '../diffusion/samplers/index.js';
import type { ModelInfo as EmbeddedInfo } from '../loader/embedded.js';
import * as tasks from '../tasks/index.js';

/** generate: from noise; img2img: from an init image; inpaint: an init image and a mask (white = fill). */
export type Mode = 'generate' | 'img2img' | 'inpaint';

export interface ModelInfo {
  name: string;
  task: tasks.TaskName;
  modes: Mode[];
  /** Class-conditional models: labels 0…count−1; `uncond` is the "no class" label used for guidance. */
  classes: { count: number; uncond: number | null; names: string[] } | null;
  text: boolean;
  /** Image side: the training size, and the multiple every side must be. */
  size: { default: number; multiple: number };
  /** The samplers, with the settings each reads (steps, eta, …). */
  samplers: { name: string; description: string; options: string[] }[];
  numTimesteps: number;
  defaults: { sampler: string; steps: number; scale: number; eta: number };
}

const SERVED: tasks.TaskName[] = ['class', 'text', 'unconditional', 'inpainting', 'text-inpainting'];

/** Models trained to fill a masked picture (they sample only the inpaint mode, always from noise). */
export function isInpaintingModel(info: { task: tasks.TaskName }): boolean {
  return tasks.INPAINTING_TASKS.includes(info.task);
}

/**
 * Describe a model. Class names come from a names file (one per line) when given, else from an
 * embedded model's model.json, else the label numbers; an embedded model's tuned sampling defaults
 * replace the package's. Super-resolution and semantic-synthesis models are refused (their inputs are
 * not offered by the server).
 */
export function describeModel(name: string, model: LatentDiffusion, o: { classNamesFile?: string; embedded?: EmbeddedInfo } = {}): ModelInfo {
  const { classNamesFile, embedded } = o;
  const task = tasks.modelTask(model);
  if (!SERVED.includes(task)) throw new Error(`${name}: ${task} models are not served (ldm serve runs ${SERVED.join(', ')} models; use ldm sample)`);
  let classes: ModelInfo['classes'] = null;
  if (task === 'class') {
    const count = tasks.numClasses(model);
    const uncond = count === 1000 ? null : count - 1;
    let given = embedded?.classNames ?? [];
    if (classNamesFile) {
      if (!existsSync(classNamesFile)) throw new Error(`class names file ${classNamesFile} does not exist`);
      given = readFileSync(classNamesFile, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '').map((l) => l.trim());
    }
    const names = Array.from({ length: count }, (_, i) => given[i] ?? (i === uncond ? 'no class' : String(i)));
    classes = { count, uncond, names };
  }
  const modes: Mode[] = isInpaintingModel({ task }) ? ['inpaint'] : ['generate', 'img2img', 'inpaint'];
  return {
    name, task, modes, classes, text: tasks.takesPrompt(task),
    size: { default: tasks.defaultImageSize(model), multiple: model.firstStageFactor * model.unetFactor },
    samplers: SAMPLER_TABLE.map((s) => ({ name: s.name, description: s.description, options: [...s.options] })), numTimesteps: model.numTimesteps,
    defaults: {
      sampler: embedded?.defaults?.sampler ?? 'ddim',
      steps: embedded?.defaults?.steps ?? 50,
      scale: embedded?.defaults?.scale ?? tasks.defaultScale(task, classes?.uncond != null),
      eta: embedded?.defaults?.eta ?? (task === 'unconditional' ? 1 : 0),
    },
  };
}
