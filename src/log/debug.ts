// sendmail's -d debug flags and the -D file they are written to. A flag is
// "category.level" (e.g. -d40.1, -d0-99.5); a trace of category c at level l
// is written when the flags set c to l or more. Output goes to stdout, or is
// appended to the -D file.

import * as fs from 'node:fs';

export class DebugOutput {
  private readonly levels = new Map<number, number>();

  private constructor(private readonly fd: number) {}

  /**
   * Parses the -d flags and opens the -D file (stdout when undefined). A file
   * that cannot be opened throws `cannot open <file>`.
   */
  static create(flags: readonly string[], file?: string): DebugOutput {
    let fd = 1;
    if (file !== undefined) {
      try {
        fd = fs.openSync(file, 'a', 0o600);
      } catch {
        throw new Error(`cannot open ${file}`);
      }
    }
    const out = new DebugOutput(fd);
    for (const flag of flags) out.setFlags(flag);
    return out;
  }

  /** Applies one -d argument: "c", "c.l", "a-b.l", or several joined by commas. */
  setFlags(text: string): void {
    for (const part of (text === '' ? '0-99.1' : text).split(',')) {
      const m = /^(\d+)(?:-(\d+))?(?:\.(\d+))?$/.exec(part.trim());
      if (!m) continue;
      const first = Number(m[1]);
      const last = m[2] !== undefined ? Number(m[2]) : first;
      const level = m[3] !== undefined ? Number(m[3]) : 1;
      for (let c = first; c <= last && c < 100; c++) this.levels.set(c, level);
    }
  }

  /** Whether a trace of `category` at `level` is selected. */
  enabled(category: number, level = 1): boolean {
    return (this.levels.get(category) ?? 0) >= level;
  }

  /** Writes one trace line when its category and level are selected. */
  trace(category: number, level: number, text: string): void {
    if (!this.enabled(category, level)) return;
    try {
      fs.writeSync(this.fd, text + '\n');
    } catch {
      // Debug output must never stop mail handling.
    }
  }
}

let current: DebugOutput | undefined;

/** Sets the process-wide debug output from -d and -D; called once by the command line. */
export function setDebugOutput(output: DebugOutput | undefined): void {
  current = output;
}

/** Writes a trace through the process-wide debug output, if -d selected it. */
export function debugTrace(category: number, level: number, text: string): void {
  current?.trace(category, level, text);
}
