// `ldm models`: the models shipped in the package and what each can do.

import { defaultModelName, listModels, modelsDir } from '../loader/embedded.js';
import { formatOptions, parseArgs, UsageError, type OptionSpec } from './args.js';

const OPTIONS: OptionSpec[] = [
  { name: 'json', flag: true, help: 'print the list as JSON (name, folder, files, model.json)' },
  { name: 'help', short: 'h', flag: true, help: 'this help' },
];

export const MODELS_USAGE = `usage: ldm models [--json]
  Lists the embedded models (models/<name>/ in the package, or LDM_MODELS_DIR): task, classes, image size,
  default sampling settings. Use one with: ldm sample <name> …
${formatOptions(OPTIONS)}`;

export function modelsCommand(argv: string[]): number {
  let flags: Set<string>;
  try {
    flags = parseArgs(argv, OPTIONS).flags;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`ldm models: ${e.message}\n${MODELS_USAGE}`);
    return 2;
  }
  if (flags.has('help')) {
    console.log(MODELS_USAGE);
    return 0;
  }
  const ms = listModels();
  if (flags.has('json')) {
    console.log(JSON.stringify(ms, null, 2));
    return 0;
  }
  if (ms.length === 0) {
    console.log(`no embedded models in ${modelsDir()}`);
    return 0;
  }
  const def = defaultModelName();
  for (const m of ms) {
    const i = m.info;
    const what = [
      i.task === 'class' ? `class-conditional, ${i.classes} classes${i.classNames ? ` (${summary(i.classNames)})` : ''}` : i.task,
      `${i.imageSize}×${i.imageSize}`,
      i.defaults ? Object.entries(i.defaults).map(([k, v]) => `${k} ${v}`).join(', ') : '',
    ].filter(Boolean).join('; ');
    console.log(`${m.name}${m.name === def ? ' (default)' : ''}: ${i.description}\n  ${what}\n  ${m.dir}`);
  }
  return 0;
}

function summary(names: string[]): string {
  return names.length <= 12 ? names.join(', ') : `${names.slice(0, 10).join(', ')}, … ${names.at(-1)}`;
}
