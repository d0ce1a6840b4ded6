// printConfig(): the effective configuration as text, for `posthorn -bP`.

import type { Config, OptionValue } from './types';
import { OPTIONS, type OptionDef } from './options';
import { ENFORCED_FEATURES } from './features';
import { formatDuration } from './duration';

/**
 * Render `cfg` as text. Each option gets one `O Name=value` line in table
 * order, followed by `# from <origin>` when the value is not the default.
 * Daemons, features, mailers, mail filters, classes and macros follow.
 */
export function printConfig(cfg: Config): string {
  const source = cfg.sourceFile === '' ? 'defaults only' : cfg.sourceFile;
  const lines: string[] = [`# Posthorn effective configuration (source: ${source})`];

  for (const def of OPTIONS) {
    const value = cfg.options.get(def.name);
    if (value === undefined) {
      lines.push(`#O ${def.name}=`);
      continue;
    }
    const origin = cfg.origins.get(def.name) ?? 'default';
    const suffix = origin === 'default' ? '' : `\t# from ${origin}`;
    lines.push(`O ${def.name}=${formatValue(def, value)}${suffix}`);
  }

  lines.push('', '# daemons');
  for (const d of cfg.daemons) {
    lines.push(`#  Name=${d.name}, Family=${d.family}, Addr=${d.addr}, Port=${d.port}, `
      + `M=${d.modifiers}, Listen=${d.listen}`);
  }

  lines.push('', '# features');
  for (const f of cfg.features) {
    const state = ENFORCED_FEATURES.has(f.name) ? 'enforced' : 'not yet enforced';
    const args = f.args.length > 0 ? `, ${f.args.join(', ')}` : '';
    lines.push(`#  FEATURE(${f.name}${args})\t${state}\t# from ${f.file}:${f.line}`);
  }

  lines.push('', '# mailers');
  for (const m of cfg.mailers) {
    lines.push(`#  ${m.name}${m.port === undefined ? '' : ` port ${m.port}`}`);
  }

  lines.push('', '# mail filters');
  for (const x of cfg.mailFilters) {
    lines.push(`X${x.name}, ${x.equates}\t# from ${x.file}:${x.line}`);
  }

  lines.push('', '# classes');
  for (const [name, members] of [...cfg.classes].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`C${name.length === 1 ? name : `{${name}}`}${[...members].join(' ')}`);
  }

  lines.push('', '# macros');
  for (const [name, value] of [...cfg.macros].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`D${name.length === 1 ? name : `{${name}}`}${value}`);
  }
  return lines.join('\n') + '\n';
}

/** Write an option value the way a .cf file would. */
export function formatValue(def: OptionDef, value: OptionValue): string {
  if (def.type === 'duration' && typeof value === 'number') {
    return formatDuration(value);
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (Array.isArray(value)) {
    // Each DaemonPortOptions and ClientPortOptions entry contains commas itself.
    return def.name.endsWith('PortOptions') ? value.join(' | ') : value.join(',');
  }
  return String(value);
}
