// A small scanner for the m4 subset that sendmail .mc files use: `quotes'
// (nesting), `dnl`, `#` comments, words, and macro calls with arguments.
// A word that names a value the .mc defined is replaced by that value and
// scanned again, as m4 expands it. The .mc reader gives meaning to the calls
// it reports.

import { ConfigError } from './errors';

export interface MacroCall {
  name: string;
  /** Arguments with one level of quotes removed; empty when called without parentheses. */
  args: string[];
  /** Whether the call had parentheses: `MAILER_DEFINITIONS` has none. */
  hasParens: boolean;
  line: number;
}

export interface ScanHandlers {
  /** Returns false when `name` is not a macro, so that the word is plain text. */
  isMacro(name: string): boolean;
  call(call: MacroCall): void;
  /** Text m4 would copy to the output, one piece at a time with its line. */
  text(text: string, line: number): void;
  /**
   * Returns the text a plain word expands to when it names a value defined
   * with define(). Undefined leaves the word as it is. `inArgument` is true
   * for a word inside the arguments of a call. May throw a ConfigError.
   */
  expand?(name: string, line: number, inArgument: boolean): string | undefined;
  /** Tests whether `#` starts a comment. sendmail's cf.m4 turns comments off with changecom(). */
  commentsActive?(): boolean;
}

/**
 * Limits on the expansions of one scan, so that define(`A', `A B') used as A
 * cannot loop: their number, and the characters copied to put their text
 * back into the input. Each expansion copies the rest of the file.
 */
const MAX_EXPANSIONS = 10_000;
const MAX_COPIED = 64 * 1024 * 1024;

const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_]/;

export class M4Scanner {
  private pos = 0;
  private line: number;
  private expansions = 0;
  private copied = 0;
  /** End of the text expansions pushed back: its line breaks are not lines of the file. */
  private pushedEnd = 0;

  /**
   * With `lenient`, a word followed by "(" that is not a macro is plain text,
   * as m4 treats it. Values are scanned again this way.
   */
  constructor(
    private source: string,
    private readonly file: string,
    firstLine = 1,
    private readonly lenient = false,
  ) {
    this.line = firstLine;
  }

  scan(handlers: ScanHandlers): void {
    while (this.pos < this.source.length) {
      const ch = this.source[this.pos];
      if (ch === '`') {
        const startLine = this.line;
        handlers.text(this.readQuoted(), startLine);
      } else if (ch === '#' && (handlers.commentsActive?.() ?? true)) {
        handlers.text(this.readComment(), this.line);
      } else if (WORD_START.test(ch)) {
        this.scanWord(handlers);
      } else {
        this.advance(1);
        handlers.text(ch, ch === '\n' ? this.line - 1 : this.line);
      }
    }
  }

  private scanWord(handlers: ScanHandlers): void {
    const startLine = this.line;
    const word = this.readWord();
    if (word === 'dnl') {
      this.skipToNextLine();
      return;
    }

    const hasParens = this.source[this.pos] === '(';
    if (!handlers.isMacro(word)) {
      if (this.pushExpansion(word, startLine, hasParens, handlers, false)) {
        return;
      }
      if (hasParens && !this.lenient) {
        throw new ConfigError({ file: this.file, line: startLine }, word, `unknown macro ${word}`);
      }
      handlers.text(word, startLine);
      return;
    }

    const args = hasParens ? this.readArguments(word, startLine, handlers) : [];
    handlers.call({ name: word, args, hasParens, line: startLine });
  }

  private advance(count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.source[this.pos] === '\n' && this.pos >= this.pushedEnd) {
        this.line++;
      }
      this.pos++;
    }
  }

  /** Replaces a defined word by its value, to be scanned next; false when the word is not defined. */
  private pushExpansion(word: string, line: number, hasParens: boolean, handlers: ScanHandlers, inArgument: boolean): boolean {
    const value = handlers.expand?.(word, line, inArgument);
    if (value === undefined) {
      return false;
    }
    if (hasParens) {
      throw new ConfigError({ file: this.file, line }, word,
        `${word}(...): Posthorn does not expand m4 macros with arguments`);
    }
    this.expansions++;
    this.copied += this.source.length + value.length;
    if (this.expansions > MAX_EXPANSIONS || this.copied > MAX_COPIED) {
      throw new ConfigError({ file: this.file, line }, word, `m4 expansion of ${word} does not end or is too large`);
    }
    this.source = this.source.slice(0, this.pos) + value + this.source.slice(this.pos);
    this.pushedEnd = Math.max(this.pushedEnd + value.length, this.pos + value.length);
    return true;
  }

  private readWord(): string {
    const start = this.pos;
    while (this.pos < this.source.length && WORD_CHAR.test(this.source[this.pos])) {
      this.pos++;
    }
    return this.source.slice(start, this.pos);
  }

  private skipToNextLine(): void {
    while (this.pos < this.source.length && this.source[this.pos] !== '\n') {
      this.pos++;
    }
    this.advance(1);
  }

  private readComment(): string {
    const start = this.pos;
    while (this.pos < this.source.length && this.source[this.pos] !== '\n') {
      this.pos++;
    }
    return this.source.slice(start, this.pos);
  }

  /** Read `...' starting at the backquote; returns the text with the outer quotes removed. */
  private readQuoted(): string {
    const startLine = this.line;
    let depth = 0;
    let out = '';
    do {
      if (this.pos >= this.source.length) {
        throw new ConfigError({ file: this.file, line: startLine }, '`', 'quote opened here is never closed');
      }
      const ch = this.source[this.pos];
      if (ch === '`') {
        depth++;
      } else if (ch === "'") {
        depth--;
      }
      if (!((ch === '`' && depth === 1) || (ch === "'" && depth === 0))) {
        out += ch;
      }
      this.advance(1);
    } while (depth > 0);
    return out;
  }

  /** Read `(arg, arg, ...)`. The scanner is at the opening parenthesis. */
  private readArguments(name: string, startLine: number, handlers: ScanHandlers): string[] {
    this.advance(1);
    const args: string[] = [];
    for (;;) {
      const { value, last } = this.readArgument(name, startLine, handlers);
      args.push(value);
      if (last) {
        return args;
      }
    }
  }

  // m4 skips unquoted white space before an argument and keeps the rest;
  // trailing unquoted white space is dropped here as well.
  private readArgument(name: string, startLine: number, handlers: ScanHandlers): { value: string; last: boolean } {
    while (/\s/.test(this.source[this.pos] ?? '')) {
      this.advance(1);
    }

    let value = '';
    let keep = 0;
    let depth = 0;
    for (;;) {
      if (this.pos >= this.source.length) {
        throw new ConfigError({ file: this.file, line: startLine }, name,
          `end of file inside the arguments of ${name}`);
      }
      const ch = this.source[this.pos];
      if (ch === '`') {
        value += this.readQuoted();
        keep = value.length;
        continue;
      }
      if (WORD_START.test(ch)) {
        const wordLine = this.line;
        const word = this.readWord();
        if (word === 'dnl') {
          this.skipToNextLine();
        } else if (this.pushExpansion(word, wordLine, this.source[this.pos] === '(', handlers, true)) {
          continue;
        } else {
          value += word;
          keep = value.length;
        }
        continue;
      }
      if (depth === 0 && (ch === ',' || ch === ')')) {
        this.advance(1);
        return { value: value.slice(0, Math.max(keep, value.trimEnd().length)), last: ch === ')' };
      }
      if (ch === '(') {
        depth++;
      } else if (ch === ')') {
        depth--;
      }
      value += ch;
      if (!/\s/.test(ch)) {
        keep = value.length;
      }
      this.advance(1);
    }
  }
}

/**
 * Scans a defined value again as m4 does when it copies an expansion to its
 * output: one level of quotes goes, and words that name defined values are
 * replaced by them. A value without quotes or such words comes back as it is.
 */
export function rescanValue(
  value: string,
  file: string,
  line: number,
  expand: (name: string, line: number) => string | undefined,
  commentsActive = true,
): string {
  let out = '';
  new M4Scanner(value, file, line, true).scan({
    isMacro: () => false,
    call: () => undefined,
    text: (piece) => {
      out += piece;
    },
    expand: (name, at) => expand(name, at),
    commentsActive: () => commentsActive,
  });
  return out;
}
