// renderOptionReference(): the option reference page, docs/options.md.
// A test compares the file with this output so the two cannot drift.

import { OPTIONS, type OptionDef } from './options';
import { formatValue } from './print';

export function renderOptionReference(): string {
  const lines = [
    '# Option reference',
    '',
    'Generated from `src/config/options.ts` by `renderOptionReference()`; do not edit by hand.',
    '',
    'Names are matched without regard to case, and any unique prefix of a name is accepted.',
    'Set an option with `O Name=value` in a .cf file, `-OName=value` on the command line',
    "(which wins), or ``define(`m4 name', `value')`` in a .mc file. Durations are numbers with",
    'a unit letter s, m, h, d or w (`1h30m`); a bare number uses the unit in the Type column.',
    'Status `accepted` means the option is read and checked, but Posthorn does not act on it yet.',
    '',
    '| Option | m4 name | Type | Default | Status | Description |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const def of OPTIONS) {
    lines.push(row(def));
  }
  return lines.join('\n') + '\n';
}

function row(def: OptionDef): string {
  const name = def.short === undefined ? `\`${def.name}\`` : `\`${def.name}\` (\`${def.short}\`)`;
  const m4 = def.m4 === undefined ? '' : `\`${def.m4}\``;
  const cells = [name, m4, typeText(def), defaultText(def), def.status ?? 'accepted', def.description];
  return `| ${cells.map(escapeCell).join(' | ')} |`;
}

function typeText(def: OptionDef): string {
  if (def.type === 'duration') {
    return `duration (bare number: ${def.unit ?? 's'})`;
  }
  if (def.type === 'enum' && def.values !== undefined) {
    return `enum: ${def.values.join(', ')}`;
  }
  return def.type;
}

function defaultText(def: OptionDef): string {
  if (def.default === undefined) {
    return '';
  }
  const text = formatValue(def, def.default);
  if (text === '') {
    return '(empty)';
  }
  return text === ' ' ? '(space)' : `\`${text}\``;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}
