// Reader for sendmail .mc files that does not run m4. It understands the
// m4 builtins .mc files use (define, undefine, divert, include, ifdef, dnl)
// and sendmail's own macros (mc-macros.ts). Text m4 would copy into the
// generated .cf (after divert(0), LOCAL_CONFIG, MAILER_DEFINITIONS) is read
// as .cf lines.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigBuilder } from './builder';
import { ConfigError, type Location } from './errors';
import { M4Scanner, type MacroCall } from './m4';
import type { McContext, McState } from './mc-context';
import { applyDefine, applyUndefine } from './mc-define';
import { SENDMAIL_MACROS } from './mc-macros';
import { addClassFromFile, readCfLine } from './cf';
import { ownEntry } from './own';

export { ConfigError } from './errors';

const MAX_INCLUDE_DEPTH = 16;
const DEFAULT_CW_FILE = '/etc/mail/local-host-names';
const DEFAULT_CT_FILE = '/etc/mail/trusted-users';

type Builtin = (reader: McReader, call: MacroCall, where: Location) => void;

const BUILTINS: Record<string, Builtin> = {
  define: (reader, call, where) =>
    applyDefine(nameArgument(call, where), call.args[1] ?? '', reader.context(where)),
  undefine: (reader, call, where) => applyUndefine(nameArgument(call, where), reader.context(where)),
  divert: (reader, call) => reader.setDivert(call.args[0] ?? '0'),
  include: (reader, call, where) => reader.include(nameArgument(call, where), where, false),
  sinclude: (reader, call, where) => reader.include(nameArgument(call, where), where, true),
  ifdef: (reader, call, where) => reader.ifdef(call, where),
};

function nameArgument(call: MacroCall, where: Location): string {
  const name = call.args[0];
  if (name === undefined || name === '') {
    throw new ConfigError(where, call.name, `missing name argument for ${call.name}`);
  }
  return name;
}

/** Read the .mc text of `file` into `builder`. */
export function readMc(text: string, file: string, builder: ConfigBuilder): void {
  const reader = new McReader(builder);
  reader.readText(text, { file, line: 1 });
  reader.finish({ file, line: 0 });
}

class McReader {
  private readonly state: McState = {
    divert: 0,
    defined: new Set(),
    variables: new Map(),
    mailerArgs: new Map(),
    mailersDone: new Set(),
  };
  private includeDepth = 0;

  // Text m4 would copy to the .cf, collected into lines.
  private pending = '';
  private pendingWhere: Location = { file: '', line: 0 };

  constructor(private readonly builder: ConfigBuilder) {}

  context(where: Location): McContext {
    return {
      builder: this.builder,
      state: this.state,
      where,
      readText: (text, at) => this.readText(text, at),
    };
  }

  readText(text: string, where: Location): void {
    const scanner = new M4Scanner(text, where.file, where.line);
    scanner.scan({
      isMacro: (name) =>
        ownEntry(BUILTINS, name) !== undefined || ownEntry(SENDMAIL_MACROS, name) !== undefined,
      call: (call) => this.call(call, { file: where.file, line: call.line }),
      text: (piece, line) => this.emit(piece, { file: where.file, line }),
    });
    this.flush();
  }

  private call(call: MacroCall, where: Location): void {
    this.flush();
    const builtin = ownEntry(BUILTINS, call.name);
    if (builtin !== undefined) {
      builtin(this, call, where);
      return;
    }
    ownEntry(SENDMAIL_MACROS, call.name)?.(call, this.context(where));
  }

  setDivert(value: string): void {
    this.flush();
    const number = Number(value.trim() === '' ? '0' : value.trim());
    this.state.divert = Number.isInteger(number) ? number : 0;
  }

  /** include() reads another .mc file; sendmail's own cf.m4 is skipped. */
  include(target: string, where: Location, optional: boolean): void {
    if (path.basename(target) === 'cf.m4') {
      return;
    }
    if (this.includeDepth >= MAX_INCLUDE_DEPTH) {
      const text = `includes nested more than ${MAX_INCLUDE_DEPTH} deep at ${target}`;
      throw new ConfigError(where, target, text);
    }

    const resolved = path.resolve(path.dirname(where.file), target);
    let text: string;
    try {
      text = fs.readFileSync(resolved, 'utf8');
    } catch (err) {
      if (optional) {
        return;
      }
      throw new ConfigError(where, target, `cannot open included file ${target}: ${(err as Error).message}`);
    }

    this.includeDepth++;
    try {
      this.readText(text, { file: resolved, line: 1 });
    } finally {
      this.includeDepth--;
    }
  }

  /** ifdef(`name', `then', `else'): read one branch as .mc text. */
  ifdef(call: MacroCall, where: Location): void {
    const name = nameArgument(call, where);
    const branch = this.state.defined.has(name) ? call.args[1] : call.args[2];
    if (branch !== undefined && branch !== '') {
      // NOTE: line numbers inside the branch count from the line of the ifdef.
      this.readText(branch, where);
    }
  }

  /** Read the class files that FEATURE(use_cw_file), use_ct_file and confCR_FILE name. */
  finish(where: Location): void {
    this.flush();
    const features = new Set(this.builder.features.map((f) => f.name));
    if (features.has('use_cw_file')) {
      this.readClassFile('w', this.state.variables.get('confCW_FILE') ?? DEFAULT_CW_FILE, where);
    }
    if (features.has('use_ct_file')) {
      this.readClassFile('t', this.state.variables.get('confCT_FILE') ?? DEFAULT_CT_FILE, where);
    }
    const relayFile = this.state.variables.get('confCR_FILE');
    if (relayFile !== undefined) {
      this.readClassFile('R', relayFile, where);
    }
    for (const [name, value] of this.state.variables) {
      this.builder.variables.set(name, value);
    }
  }

  // The m4 defaults use `-o` (a missing file is fine); Posthorn does the same
  // for every class file named this way.
  private readClassFile(name: string, spec: string, where: Location): void {
    const file = spec.trim().replace(/^-o\s*/, '');
    addClassFromFile(this.builder, name, file, true, where);
  }

  private emit(piece: string, where: Location): void {
    if (this.state.divert < 0) {
      return;
    }
    const parts = piece.split('\n');
    parts.forEach((part, index) => {
      if (this.pending.trim() === '') {
        this.pendingWhere = { file: where.file, line: where.line + index };
      }
      this.pending += part;
      if (index < parts.length - 1) {
        this.flush();
      }
    });
  }

  private flush(): void {
    const line = this.pending.trim();
    this.pending = '';
    if (line !== '') {
      readCfLine(line, this.pendingWhere, this.builder);
    }
  }
}
