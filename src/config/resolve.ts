// Option name lookup as sendmail's setoption() does it: case-insensitive,
// any unique prefix of the part before the first dot, exact sub-option.

import { OPTIONS, optionByName, optionByShort, type OptionDef } from './options';

export interface ResolvedName {
  def: OptionDef;
  /** Set when `name` was a prefix: `Option X used as abbreviation for Y`. */
  abbreviationNotice?: string;
}

/** Names before the first dot: `Timeout`, `Milter`, `QueueDirectory`, ... */
const BASE_NAMES = [...new Set(OPTIONS.map((def) => def.name.split('.')[0]))];

/**
 * Find the option `name` refers to. Throws an Error for an unknown name and
 * for a prefix that matches more than one option.
 */
export function resolveOptionName(name: string): ResolvedName {
  const dot = name.indexOf('.');
  const base = dot < 0 ? name : name.slice(0, dot);
  const sub = dot < 0 ? '' : name.slice(dot);
  if (base === '') {
    throw new Error(`unknown option name ${name}`);
  }

  const canonicalBase = resolveBase(base, name);
  const def = optionByName(canonicalBase + sub);
  if (def === undefined) {
    throw new Error(`unknown option name ${name}`);
  }

  const result: ResolvedName = { def };
  if (canonicalBase.length !== base.length) {
    result.abbreviationNotice = `Option ${base} used as abbreviation for ${canonicalBase}`;
  }
  return result;
}

function resolveBase(base: string, fullName: string): string {
  const lower = base.toLowerCase();
  const exact = BASE_NAMES.find((candidate) => candidate.toLowerCase() === lower);
  if (exact !== undefined) {
    return exact;
  }

  const matches = BASE_NAMES.filter((candidate) => candidate.toLowerCase().startsWith(lower));
  if (matches.length === 0) {
    throw new Error(`unknown option name ${fullName}`);
  }
  if (matches.length > 1) {
    throw new Error(`ambiguous option name ${base} (matches ${matches[0]} and ${matches[1]})`);
  }
  return matches[0];
}

/**
 * Map the old single-character form `-o<c><value>` (or `O<c><value>` in a
 * .cf file) to the long option name. Throws an Error for an unknown letter.
 */
export function parseShortOption(c: string, value: string): { name: string; value: string } {
  const def = optionByShort(c);
  if (def === undefined) {
    // NOTE: sendmail's `g` (default group) letter is not supported; -oM is taken by the command line parser.
    throw new Error(`unknown option letter ${c}`);
  }
  return { name: def.name, value };
}
