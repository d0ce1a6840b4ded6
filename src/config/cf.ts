// Reader for sendmail.cf files. It reads options, macros, classes, mailers
// (for their port) and mail filters. Rewriting rules and other lines are
// skipped, because Posthorn implements the standard rulesets itself.

import * as fs from 'node:fs';
import type { ConfigBuilder } from './builder';
import { ConfigError, atLocation, type Location } from './errors';
import { parseShortOption } from './resolve';
import type { MailerSpec } from './types';

// Line kinds that are valid but carry nothing Posthorn reads: rulesets and
// rules (S, R), headers (H), precedences (P), maps (K), environment (E),
// queue groups (Q) and trusted users (T).
const SKIPPED_LINES = new Set(['S', 'R', 'H', 'P', 'K', 'E', 'Q', 'T']);

/** Read a whole .cf file into `builder`. */
export function readCf(text: string, file: string, builder: ConfigBuilder): void {
  for (const { line, number } of joinContinuations(text)) {
    readCfLine(line, { file, line: number }, builder);
  }
}

/** Lines starting with a space or tab continue the line before them. */
function joinContinuations(text: string): Array<{ line: string; number: number }> {
  const out: Array<{ line: string; number: number }> = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const previous = out[out.length - 1];
    if (/^[ \t]/.test(line) && previous !== undefined && line.trim() !== '') {
      previous.line += ' ' + line.trim();
    } else {
      out.push({ line, number: i + 1 });
    }
  }
  return out;
}

/** Read one logical .cf line (continuations already joined). */
export function readCfLine(line: string, where: Location, builder: ConfigBuilder): void {
  const text = line.replace(/\s+$/, '');
  if (text.trim() === '' || text.startsWith('#')) {
    return;
  }

  const kind = text.charAt(0);
  const rest = text.slice(1);
  switch (kind) {
    case 'O':
      readOptionLine(rest, where, builder);
      return;
    case 'D':
      readMacroLine(rest, where, builder);
      return;
    case 'C':
      readClassLine(rest, where, builder);
      return;
    case 'F':
      readClassFileLine(rest, where, builder);
      return;
    case 'M':
      readMailerLine(rest, where, builder);
      return;
    case 'X':
      readFilterLine(rest, where, builder);
      return;
    case 'V':
      return;
  }
  if (!SKIPPED_LINES.has(kind)) {
    throw new ConfigError(where, kind, `unknown configuration line "${text}"`);
  }
}

// `O Name=value` (long form, a space after O) or `O<c><value>` (short form).
function readOptionLine(rest: string, where: Location, builder: ConfigBuilder): void {
  if (rest === '' || /^\s/.test(rest)) {
    const body = rest.trim();
    const eq = body.indexOf('=');
    const name = (eq < 0 ? body : body.slice(0, eq)).trim();
    const value = eq < 0 ? '' : body.slice(eq + 1).trim();
    if (name === '') {
      throw new ConfigError(where, '', 'null option name');
    }
    builder.setOption(name, value, where);
    return;
  }

  const letter = rest.charAt(0);
  const short = atLocation(where, letter, () => parseShortOption(letter, rest.slice(1)));
  builder.setOption(short.name, short.value, where);
}

/** Split off a macro or class name (one character, or `{long name}`) from the rest. */
function splitName(rest: string, where: Location): [string, string] {
  if (rest.startsWith('{')) {
    const close = rest.indexOf('}');
    if (close < 0) {
      throw new ConfigError(where, rest, `missing } in name "${rest}"`);
    }
    return [rest.slice(1, close), rest.slice(close + 1)];
  }
  if (rest === '' || /^\s/.test(rest)) {
    throw new ConfigError(where, rest, 'missing macro or class name');
  }
  return [rest.charAt(0), rest.slice(1)];
}

function readMacroLine(rest: string, where: Location, builder: ConfigBuilder): void {
  const [name, value] = splitName(rest, where);
  builder.defineMacro(name, value.trim(), where);
}

function readClassLine(rest: string, where: Location, builder: ConfigBuilder): void {
  const [name, words] = splitName(rest, where);
  builder.addClassWords(name, words.trim().split(/\s+/));
}

// `Fw/etc/mail/local-host-names`, `Fw-o /path` (-o: the file may be missing),
// optionally followed by a scanf format, which Posthorn ignores.
function readClassFileLine(rest: string, where: Location, builder: ConfigBuilder): void {
  const [name, spec] = splitName(rest, where);
  let body = spec.trim();
  const optional = body.startsWith('-o');
  if (optional) {
    body = body.slice(2).trim();
  }
  const path = body.split(/\s+/)[0];
  if (path.startsWith('|')) {
    builder.notice(where, `class ${name} from program "${path.slice(1)}" ignored`);
    return;
  }
  addClassFromFile(builder, name, path, optional, where);
}

/** Add the first word of each line of `path` to class `name`; `#` starts a comment. */
export function addClassFromFile(
  builder: ConfigBuilder,
  name: string,
  path: string,
  optional: boolean,
  where: Location,
): void {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      return;
    }
    throw new ConfigError(where, path, `cannot open class file ${path}: ${(err as Error).message}`);
  }
  const words = text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/)[0] ?? '')
    .filter((word) => word !== '');
  builder.addClassWords(name, words);
}

// `Mesmtp, P=[IPC], F=mDFMuX, ..., A=TCP $h 2526`: only the name and the port are kept.
function readMailerLine(rest: string, where: Location, builder: ConfigBuilder): void {
  const match = /^\s*([^\s,]+)\s*,?(.*)$/.exec(rest);
  if (match === null) {
    throw new ConfigError(where, rest, 'mailer line without a name');
  }
  const name = match[1];
  let port: number | undefined;
  const equates: { path?: string; flags?: string; argv?: string } = {};
  for (const field of match[2].split(',')) {
    const [key, ...value] = field.trim().split('=');
    if (key.trim() === 'A') {
      port = portFromArgv(value.join('='));
      equates.argv = value.join('=').trim();
    }
    if (key.trim() === 'P') equates.path = value.join('=').trim();
    if (key.trim() === 'F') equates.flags = value.join('=').trim();
  }
  // P=, F= and A= are kept for the local and prog mailers, which Posthorn runs itself.
  setMailer(builder, { name, port, ...(name === 'local' || name === 'prog' ? equates : {}) });
}

/** Port from a mailer argv `TCP $h 2526` or `IPC $h 2526`; undefined when none is given. */
export function portFromArgv(argv: string): number | undefined {
  const words = argv.trim().split(/\s+/);
  if (words.length >= 3 && /^(TCP|IPC)$/.test(words[0]) && /^\d+$/.test(words[2])) {
    return Number(words[2]);
  }
  return undefined;
}

/** Add a mailer, replacing an earlier one of the same name. */
export function setMailer(builder: ConfigBuilder, mailer: MailerSpec): void {
  const index = builder.mailers.findIndex((m) => m.name === mailer.name);
  const spec: MailerSpec = { name: mailer.name };
  for (const key of ['port', 'path', 'flags', 'argv'] as const) {
    if (mailer[key] !== undefined) Object.assign(spec, { [key]: mailer[key] });
  }
  if (index >= 0) {
    builder.mailers[index] = spec;
  } else {
    builder.mailers.push(spec);
  }
}

// `Xname, S=inet:8891@127.0.0.1, F=T, T=C:5m;S:10s`
function readFilterLine(rest: string, where: Location, builder: ConfigBuilder): void {
  const comma = rest.indexOf(',');
  const name = (comma < 0 ? rest : rest.slice(0, comma)).trim();
  if (name === '') {
    throw new ConfigError(where, rest, 'mail filter line without a name');
  }
  const equates = comma < 0 ? '' : rest.slice(comma + 1).trim();
  builder.mailFilters.push({ name, equates, file: where.file, line: where.line });
}
