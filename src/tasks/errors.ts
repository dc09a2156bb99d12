// Errors the tasks throw. They speak of the task's inputs by their option names (`classLabel`, `prompt`,
// `initImage`, …), never of how a front end spells them: the CLI maps an input to its flag, the server to
// its JSON field.

/** The option names of the sampling inputs (as `sample()` takes them). */
export type TaskInput =
  | 'classLabel' | 'uncondClass' | 'prompt' | 'vocab' | 'image' | 'mask' | 'lowRes' | 'tile' | 'segmentation'
  | 'initImage' | 'strength' | 'n' | 'H' | 'W' | 'seed' | 'steps' | 'scale' | 'eta' | 'sampler' | 'xT' | 'batchSize'
  | 'negativePrompt' | 'schedule';

/** A model this task cannot sample, or a request that does not fit the model. */
export class TaskError extends Error {}

/** A problem with one input; `input` names it. */
export class TaskInputError extends TaskError {
  constructor(readonly input: TaskInput, message: string) {
    super(message);
  }
}
