// A small scanner for the m4 subset that sendmail .mc files use: `quotes'
// (nesting), `dnl`, `#` comments, words, and macro calls with arguments.
// It does not expand user-defined macros; the .mc reader gives meaning to
// the calls it reports.

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
}

const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_]/;

export class M4Scanner {
  private pos = 0;
  private line: number;

  constructor(
    private readonly source: string,
    private readonly file: string,
    firstLine = 1,
  ) {
    this.line = firstLine;
  }

  scan(handlers: ScanHandlers): void {
    while (this.pos < this.source.length) {
      const ch = this.source[this.pos];
      if (ch === '`') {
        const startLine = this.line;
        handlers.text(this.readQuoted(), startLine);
      } else if (ch === '#') {
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
      if (hasParens) {
        throw new ConfigError({ file: this.file, line: startLine }, word, `unknown macro ${word}`);
      }
      handlers.text(word, startLine);
      return;
    }

    const args = hasParens ? this.readArguments(word, startLine) : [];
    handlers.call({ name: word, args, hasParens, line: startLine });
  }

  private advance(count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.source[this.pos] === '\n') {
        this.line++;
      }
      this.pos++;
    }
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
  private readArguments(name: string, startLine: number): string[] {
    this.advance(1);
    const args: string[] = [];
    for (;;) {
      const { value, last } = this.readArgument(name, startLine);
      args.push(value);
      if (last) {
        return args;
      }
    }
  }

  // m4 skips unquoted white space before an argument and keeps the rest;
  // trailing unquoted white space is dropped here as well.
  private readArgument(name: string, startLine: number): { value: string; last: boolean } {
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
        const word = this.readWord();
        if (word === 'dnl') {
          this.skipToNextLine();
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
