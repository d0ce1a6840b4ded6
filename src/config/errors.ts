// The one error type for configuration problems, so callers can tell a bad
// configuration (refuse to start, exit EX_CONFIG) from a bug.

/** The place a configuration value came from: a file and line, or "-O" with line 0. */
export interface Location {
  file: string;
  line: number;
}

/**
 * An invalid configuration. The message starts with "file:line: " when the
 * problem has a place, e.g. `examples/sendmail.mc:12: unknown option confFOO`.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly line: number;
  /** The offending word: an option, macro or FEATURE name, or the bad value. */
  readonly word: string;

  constructor(where: Location, word: string, text: string) {
    super(formatPlace(where) + text);
    this.file = where.file;
    this.line = where.line;
    this.word = word;
  }
}

/** Format `where` as a message prefix: `file:line: `, `file: ` or nothing. */
export function formatPlace(where: Location): string {
  if (where.file === '') {
    return '';
  }
  if (where.line > 0) {
    return `${where.file}:${where.line}: `;
  }
  return `${where.file}: `;
}

/** Run `step`, turning a plain Error it throws into a ConfigError at `where`. */
export function atLocation<T>(where: Location, word: string, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof ConfigError) {
      throw err;
    }
    const text = err instanceof Error ? err.message : String(err);
    throw new ConfigError(where, word, text);
  }
}
