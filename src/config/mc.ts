// Reader for sendmail .mc files that does not run m4. It understands the
// m4 builtins .mc files use (define, undefine, divert, include, ifdef, dnl)
// and sendmail's own macros (mc-macros.ts). Text m4 would copy into the
// generated .cf (after divert(0), LOCAL_CONFIG, MAILER_DEFINITIONS) is read
// as .cf lines.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigBuilder } from './builder';
import { ConfigError, type Location } from './errors';
import { M4Scanner, rescanValue, type MacroCall } from './m4';
import type { McContext, McState } from './mc-context';
import { applyDefine, applyUndefine, CF_M4_DEFAULTS, CF_M4_PREDEFINED } from './mc-define';
import { optionByName } from './options';
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
    m4Values: new Map(Object.entries(CF_M4_DEFAULTS)),
    comments: true,
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
      rescan: (value) => rescanValue(
        value, where.file, where.line, (name, line) => this.expand(name, { file: where.file, line }), this.state.comments),
    };
  }

  /**
   * Returns what an unquoted word expands to: the value the .mc gave it with define()
   * (or the default of sendmail's cf.m4 for the few names .mc files extend,
   * such as confMILTER_MACROS_HELO). Inside arguments, a name that
   * sendmail's m4 files define but this file does not is an error: m4 would
   * use a default that Posthorn does not have, so the result could silently
   * differ. Other undefined words stay as they are.
   */
  private expand(name: string, where: Location, strict = true): string | undefined {
    const value = this.state.m4Values.get(name);
    if (value !== undefined) {
      return value;
    }
    if (strict && CF_M4_PREDEFINED.has(name)) {
      throw new ConfigError(where, name,
        `${name} is used as a value but this file does not define it; Posthorn does not know sendmail's m4 default for it`);
    }
    return undefined;
  }

  readText(text: string, where: Location): void {
    const scanner = new M4Scanner(text, where.file, where.line);
    scanner.scan({
      isMacro: (name) =>
        ownEntry(BUILTINS, name) !== undefined || ownEntry(SENDMAIL_MACROS, name) !== undefined,
      call: (call) => this.call(call, { file: where.file, line: call.line }),
      text: (piece, line) => this.emit(piece, { file: where.file, line }),
      // Plain text (cf lines, discarded text under divert(-1)) only expands what the file defined.
      expand: (name, line, inArgument) => this.expand(name, { file: where.file, line }, inArgument),
      commentsActive: () => this.state.comments,
    });
    this.flush();
  }

  private call(call: MacroCall, where: Location): void {
    // A call on a .cf comment line (possible once cf.m4 turned m4 comments
    // off) leaves the rest of the line in that comment, as in m4's output.
    if (!this.pending.trimStart().startsWith('#')) {
      this.flush();
    }
    const builtin = ownEntry(BUILTINS, call.name);
    if (builtin !== undefined) {
      builtin(this, call, where);
      return;
    }
    // sendmail's macros put their arguments into the .cf text, which m4 scans again.
    const ctx = this.context(where);
    const args = call.args.map((arg) => ctx.rescan(arg));
    ownEntry(SENDMAIL_MACROS, call.name)?.({ ...call, args }, ctx);
  }

  setDivert(value: string): void {
    this.flush();
    const number = Number(value.trim() === '' ? '0' : value.trim());
    this.state.divert = Number.isInteger(number) ? number : 0;
  }

  /**
   * include() reads another .mc file. sendmail's own cf.m4 is not read, but
   * its changecom() is kept: after it, `#` no longer starts an m4 comment, so
   * a macro call on a `#` line takes effect, as with m4.
   */
  include(target: string, where: Location, optional: boolean): void {
    if (path.basename(target) === 'cf.m4') {
      this.state.comments = false;
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
    const privacy = this.state.privacyFlags;
    const privacyDef = optionByName('PrivacyOptions');
    if (privacy !== undefined && privacyDef !== undefined) {
      this.builder.setOptionDef(privacyDef, privacy.value, privacy.where);
    } else if (privacyDef !== undefined && this.state.m4Values.get('confPRIVACY_FLAGS') === CF_M4_DEFAULTS.confPRIVACY_FLAGS) {
      // cf.m4 writes "O PrivacyOptions=authwarnings" when the .mc neither sets nor undefines confPRIVACY_FLAGS.
      this.builder.setOptionDef(privacyDef, CF_M4_DEFAULTS.confPRIVACY_FLAGS, where);
    }
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
