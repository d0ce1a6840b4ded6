// sendmail's convtime(): time values in options and on the command line.

export type TimeUnit = 's' | 'm' | 'h' | 'd';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
};

/**
 * Parse a sendmail time value into milliseconds.
 *
 * The value is one or more numbers, each followed by a unit letter s, m, h, d
 * or w (`90s`, `1h30m`). A number without a letter uses `defaultUnit`. An
 * empty value is 0, as in sendmail. Other text throws an Error that names it.
 */
export function parseDuration(text: string, defaultUnit: TimeUnit): number {
  const value = text.trim();
  if (value === '') {
    return 0;
  }

  let total = 0;
  let pos = 0;
  while (pos < value.length) {
    const match = /^(\d+)([a-zA-Z]?)/.exec(value.slice(pos));
    if (match === null) {
      throw new Error(`invalid time value "${text}": expected a number at "${value.slice(pos)}"`);
    }
    const letter = match[2] === '' ? defaultUnit : match[2].toLowerCase();
    const unitMs = UNIT_MS[letter];
    if (unitMs === undefined) {
      throw new Error(`invalid time unit "${match[2]}" in "${text}" (use s, m, h, d or w)`);
    }
    total += Number(match[1]) * unitMs;
    pos += match[0].length;
  }

  if (!Number.isSafeInteger(total)) {
    throw new Error(`time value "${text}" is too large`);
  }
  return total;
}

/** Format milliseconds the way sendmail writes time values: `1h30m`, `45s`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) {
    return '0s';
  }
  let rest = Math.floor(ms / 1000);
  let out = '';
  for (const [letter, size] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${letter}`;
      rest %= size;
    }
  }
  const millis = ms % 1000;
  if (millis !== 0) {
    // NOTE: sendmail has no millisecond unit, so such values print only here.
    out += `${millis}ms`;
  }
  return out;
}
