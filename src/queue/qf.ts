// The control file (qf) format: sendmail's version 8 lines, in sendmail's order,
// plus Posthorn's X lines for the data file size and the recipient states. The
// format is described line by line in docs/queue-format.md.

import { QueueItem, QueueRecipient, RecipientState } from './types';
import { escapeField, escapeHeader, unescapeField } from './qf-escape';

/** A control file that cannot be read: truncated, damaged or not ours. */
export class QueueFileError extends Error {
  override name = 'QueueFileError';

  constructor(
    /** 1-based number of the offending line. */
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const RECIPIENT_STATES: readonly RecipientState[] = ['pending', 'sent', 'deferred', 'bounced'];

/** DSN NOTIFY words and their R line flag letters (sendmail QPINGON*). */
const NOTIFY_LETTERS: Record<string, string> = { SUCCESS: 'S', FAILURE: 'F', DELAY: 'D' };
const LETTER_NOTIFY: Record<string, string> = { S: 'SUCCESS', F: 'FAILURE', D: 'DELAY' };

/** Returns an item with `id` and every other field empty or zero, to be filled in. */
export function emptyQueueItem(id: string): QueueItem {
  return {
    id,
    created: 0,
    lastAttempt: 0,
    attempts: 0,
    priority: 0,
    flags: '',
    macros: new Map(),
    sender: '',
    recipients: [],
    headers: [],
    bodySize: 0,
  };
}

/** Renders an item as control file text, ending with the "." line. */
export function serializeControlFile(item: QueueItem): string {
  const lines = [
    'V8',
    `T${checkInteger('created', item.created, false)}`,
    `K${checkInteger('lastAttempt', item.lastAttempt, false)}`,
    `N${checkInteger('attempts', item.attempts, false)}`,
    `P${checkInteger('priority', item.priority, true)}`,
    `Xsize=${checkInteger('bodySize', item.bodySize, false)}`,
  ];

  if (item.bodyType !== undefined) lines.push(`B${item.bodyType}`);
  if (item.quarantine !== undefined) lines.push(`q${escapeField(item.quarantine)}`);
  if (item.statusMessage !== undefined) lines.push(`M${escapeField(item.statusMessage)}`);

  const flags = flagsWithRet(item.flags, item.ret);
  if (flags !== '') lines.push(`F${escapeField(flags)}`);

  for (const [name, value] of item.macros) lines.push(macroLine(name, value));

  lines.push(`S<${escapeField(item.sender)}>`);
  if (item.envid !== undefined) lines.push(`Z${escapeField(item.envid)}`);
  if (item.auth !== undefined) lines.push(`A${escapeField(item.auth)}`);
  if (item.deliverBy !== undefined) lines.push(deliverByLine(item.deliverBy));

  for (const rcpt of item.recipients) lines.push(...recipientLines(rcpt));
  for (const header of item.headers) lines.push(`H??${escapeHeader(header)}`);

  lines.push('.');
  return lines.join('\n') + '\n';
}

/** sendmail's e_dlvr_flag bits, written as one raw byte after "!". */
const DLVR_NOTIFY = 0x01;
const DLVR_RETURN = 0x02;
const DLVR_TRACE = 0x10;

/** The DELIVERBY line as sendmail 8.17 writes it: "!", the flag byte, a space, the by-time. */
function deliverByLine(by: NonNullable<QueueItem['deliverBy']>): string {
  let flag = by.mode === 'R' ? DLVR_RETURN : DLVR_NOTIFY;
  if (by.trace) flag |= DLVR_TRACE;
  return `!${String.fromCharCode(flag)} ${checkInteger('deliverBy', by.seconds, true)}`;
}

function checkInteger(field: string, value: number, signed: boolean): number {
  if (!Number.isSafeInteger(value) || (!signed && value < 0)) {
    throw new RangeError(`invalid ${field} value for the control file: ${value}`);
  }
  return value;
}

/** Replaces the RET letters of the F line ("d" RET given, "n" RET=HDRS) from `ret`. */
function flagsWithRet(flags: string, ret: QueueItem['ret']): string {
  let out = flags.replace(/[dn]/g, '');
  if (ret !== undefined) out += 'd';
  if (ret === 'HDRS') out += 'n';
  return out;
}

/**
 * Writes a macro as sendmail does: `$r` for a one-character name, and
 * `${daemon_name}` for a long one, which Posthorn keeps as `{daemon_name}`.
 */
function macroLine(name: string, value: string): string {
  if (name.length === 1 && /^[^\s{\\]$/.test(name)) return `$${name}${escapeField(value)}`;
  const bare = /^\{[^{}]+\}$/.test(name) ? name.slice(1, -1) : name;
  return `\${${escapeField(bare, '}')}}${escapeField(value)}`;
}

function recipientLines(rcpt: QueueRecipient): string[] {
  const lines: string[] = [];
  if (rcpt.status !== undefined) lines.push(`M${escapeField(rcpt.status)}`);
  lines.push(`Xstate=${rcpt.state}`);
  if (rcpt.dsnCode !== undefined) lines.push(`Xdsn=${escapeField(rcpt.dsnCode)}`);
  if (rcpt.remoteHost !== undefined) lines.push(`Xhost=${escapeField(rcpt.remoteHost)}`);
  if (rcpt.diagnostic !== undefined) lines.push(`Xdiag=${escapeField(rcpt.diagnostic)}`);
  if (rcpt.parent !== undefined) lines.push(`Xparent=${escapeField(rcpt.parent)}`);
  if (rcpt.ctladdr !== undefined) lines.push(`Xctladdr=${escapeField(rcpt.ctladdr)}`);
  if (rcpt.owner !== undefined) lines.push(`Xowner=${escapeField(rcpt.owner)}`);
  if (rcpt.orcpt !== undefined) lines.push(`Q${escapeField(rcpt.orcpt)}`);
  if (rcpt.finalRcpt !== undefined) lines.push(`r${escapeField(rcpt.finalRcpt)}`);

  // NOTE: NOTIFY words other than SUCCESS, FAILURE, DELAY and NEVER are dropped.
  let flags = 'P';
  if (rcpt.notify !== undefined) {
    flags += 'N' + rcpt.notify.map((word) => NOTIFY_LETTERS[word] ?? '').join('');
  }
  lines.push(`R${flags}:<${escapeField(rcpt.address)}>`);
  return lines;
}

/** The first lines of a control file in which Posthorn writes its Xsize= line. */
const OWN_MARK_LINES = 12;

function isOwnControlText(lines: string[]): boolean {
  for (let i = 1; i < OWN_MARK_LINES && i < lines.length; i++) if (lines[i].startsWith('Xsize=')) return true;
  return false;
}

/**
 * Decodes the bytes of a control file: Posthorn writes UTF-8, and sendmail
 * writes bytes, which are read as Latin-1 so that each one stays one character.
 */
export function decodeControlFile(bytes: Buffer): string {
  const head = bytes.subarray(0, 1024).toString('latin1').split('\n');
  return isOwnControlText(head) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/**
 * Parses control file text written by serializeControlFile(). Throws
 * QueueFileError when the text is truncated (no final "." line), has an unknown
 * or malformed line, or lacks the T or S line.
 */
export function parseControlFile(text: string, id: string): QueueItem {
  if (text === '') throw new QueueFileError(1, 'control file is empty');

  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') {
    throw new QueueFileError(lines.length, 'last line has no newline (file is truncated)');
  }
  lines.pop();

  if (lines[0] !== 'V8') throw new QueueFileError(1, `expected "V8", found "${clip(lines[0])}"`);

  // Posthorn writes Xsize= among the first lines and escapes backslashes in its
  // fields; sendmail writes neither, and a backslash in its files is literal
  // ("a\ b"@example.com).
  const parser = new ControlFileParser(id, !isOwnControlText(lines));
  for (let i = 1; i < lines.length; i++) {
    parser.lineNumber = i + 1;
    if (lines[i] === '.') {
      if (i !== lines.length - 1) throw new QueueFileError(i + 2, 'data after the "." line');
      return parser.finish();
    }
    parser.parseLine(lines[i]);
  }
  throw new QueueFileError(lines.length, 'no "." line at the end (file is truncated)');
}

class ControlFileParser {
  lineNumber = 1;
  private readonly item: QueueItem;
  private seenCreated = false;
  private seenSender = false;
  /** Recipient lines read since the last R line. */
  private rcpt: Partial<QueueRecipient> | undefined;
  /** Lines of the header being read; continuation lines are added to it. */
  private header: string[] | undefined;
  /** The header being read is one of sendmail's conditional headers that is left out. */
  private droppedHeader = false;
  /** sendmail's C line: the alias and the user that the next recipients came from. */
  private controlling: { parent: string; user?: string } | undefined;

  constructor(
    id: string,
    /** Fields are taken as written, without Posthorn's escapes (a file from sendmail). */
    private readonly literal = false,
  ) {
    this.item = emptyQueueItem(id);
    if (literal) this.item.fromSendmail = true;
  }

  parseLine(line: string): void {
    const key = line[0];
    if (key === ' ' || key === '\t') {
      if (this.droppedHeader) return;
      if (this.header === undefined) this.fail('continuation line outside a header');
      this.header.push(this.text(line));
      return;
    }
    this.endHeader();
    this.droppedHeader = false;

    if (key === 'H') this.parseHeader(line);
    else if (key === 'X') this.parseExtension(line);
    else if (!this.seenSender) this.parseEnvelopeLine(line);
    else this.parseRecipientLine(line);
  }

  finish(): QueueItem {
    this.endHeader();
    if (this.rcpt !== undefined) this.fail('recipient lines without an R line');
    if (!this.seenCreated) this.fail('no T line');
    if (!this.seenSender) this.fail('no S line');
    return this.item;
  }

  private parseEnvelopeLine(line: string): void {
    const item = this.item;
    const rest = line.slice(1);

    switch (line[0]) {
      case 'T':
        item.created = this.integer(rest, false);
        this.seenCreated = true;
        break;
      case 'K':
        item.lastAttempt = this.integer(rest, false);
        break;
      case 'N':
        item.attempts = this.integer(rest, false);
        break;
      case 'P':
        item.priority = this.integer(rest, true);
        break;
      case 'B':
        if (rest !== '7BIT' && rest !== '8BITMIME') this.fail(`invalid body type "${clip(rest)}"`);
        item.bodyType = rest;
        break;
      case 'q':
        item.quarantine = this.text(rest);
        break;
      case 'M':
        item.statusMessage = this.text(rest);
        break;
      case 'F':
        this.parseFlags(this.text(rest));
        break;
      case '$':
        this.parseMacro(rest);
        break;
      case 'S':
        item.sender = stripAngles(this.text(rest));
        this.seenSender = true;
        break;
      case 'I':
      case 'd':
      case 'D':
      case 'L':
        // sendmail's data file inode, data file folder and name, and Solaris
        // Content-Length: none is needed to deliver. A df in another folder
        // is missing here, and the item is set aside for that.
        if (!this.literal) this.fail(`unrecognized line "${clip(line)}"`);
        break;
      default:
        this.fail(`unrecognized line "${clip(line)}"`);
    }
  }

  private parseRecipientLine(line: string): void {
    const rest = line.slice(1);

    switch (line[0]) {
      case 'Z':
        if (this.rcpt !== undefined) this.fail('Z line inside a recipient');
        this.item.envid = this.text(rest);
        break;
      case 'A':
        // The AUTH= parameter of MAIL, which sendmail writes after Z.
        if (this.rcpt !== undefined) this.fail('A line inside a recipient');
        this.item.auth = this.text(rest);
        break;
      case '!':
        if (this.rcpt !== undefined) this.fail('! line inside a recipient');
        this.parseDeliverBy(rest);
        break;
      case 'M':
        this.recipient().status = this.text(rest);
        break;
      case 'Q':
        this.recipient().orcpt = this.text(rest);
        break;
      case 'r':
        // sendmail's final recipient for DSNs; Posthorn keeps it for the next writer.
        this.recipient().finalRcpt = this.text(rest);
        break;
      case 'R':
        this.parseRecipient(rest);
        break;
      case 'C':
        if (!this.literal) this.fail(`unrecognized line "${clip(line)}"`);
        this.parseControllingUser(rest);
        break;
      case 'E':
        // An error recipient of sendmail's (Errors-To: with UseErrorsTo): bounces go to the sender instead.
        if (!this.literal) this.fail(`unrecognized line "${clip(line)}"`);
        break;
      default:
        this.fail(`unrecognized line "${clip(line)}"`);
    }
  }

  private parseExtension(line: string): void {
    const eq = line.indexOf('=');
    if (eq < 0) this.fail(`unrecognized line "${clip(line)}"`);
    const name = line.slice(1, eq);
    const value = line.slice(eq + 1);

    if (name === 'size' && !this.seenSender) {
      this.item.bodySize = this.integer(value, false);
    } else if (name === 'state' && this.seenSender) {
      const state = value as RecipientState;
      if (!RECIPIENT_STATES.includes(state)) this.fail(`invalid recipient state "${clip(value)}"`);
      this.recipient().state = state;
    } else if (name === 'dsn' && this.seenSender) {
      this.recipient().dsnCode = this.text(value);
    } else if (name === 'host' && this.seenSender) {
      this.recipient().remoteHost = this.text(value);
    } else if (name === 'diag' && this.seenSender) {
      this.recipient().diagnostic = this.text(value);
    } else if (name === 'parent' && this.seenSender) {
      this.recipient().parent = this.text(value);
    } else if (name === 'ctladdr' && this.seenSender) {
      this.recipient().ctladdr = this.text(value);
    } else if (name === 'owner' && this.seenSender) {
      this.recipient().owner = this.text(value);
    } else {
      this.fail(`unrecognized line "${clip(line)}"`);
    }
  }

  private parseDeliverBy(rest: string): void {
    const flag = rest.charCodeAt(0);
    const mode = flag & (DLVR_NOTIFY | DLVR_RETURN);
    // The flag byte is one of a few small values. A byte read as U+FFFD, or any
    // other character past 0x7f, is damage and not a mode.
    if (rest[1] !== ' ' || flag > 0x7f || (mode !== DLVR_NOTIFY && mode !== DLVR_RETURN)) {
      this.fail(`invalid deliver-by line "${clip(rest)}"`);
    }
    this.item.deliverBy = {
      seconds: this.integer(rest.slice(2), true),
      mode: mode === DLVR_RETURN ? 'R' : 'N',
      trace: (flag & DLVR_TRACE) !== 0,
    };
  }

  private parseFlags(flags: string): void {
    this.item.flags = flags;
    if (flags.includes('d')) this.item.ret = flags.includes('n') ? 'HDRS' : 'FULL';
  }

  private parseMacro(rest: string): void {
    if (rest === '') this.fail('macro line without a name');
    if (rest[0] !== '{') {
      this.item.macros.set(rest[0], this.text(rest.slice(1)));
      return;
    }

    const close = rest.indexOf('}');
    if (close < 0) this.fail('macro name without "}"');
    const inner = this.text(rest.slice(1, close));
    // `${x}` is the macro x; older Posthorn files wrote `${{name\u007d}` for {name}.
    const name = inner.length === 1 || inner.startsWith('{') ? inner : `{${inner}}`;
    this.item.macros.set(name, this.text(rest.slice(close + 1)));
  }

  /**
   * Reads sendmail's C line, "C:alias" or "Cuser:uid:gid:alias": the next
   * recipients are the expansion of that alias, :include: or .forward, so they
   * are not expanded again, and a program or file among them runs as that
   * user. A bare "C" ends the group.
   */
  private parseControllingUser(rest: string): void {
    if (rest === '') {
      this.controlling = undefined;
      return;
    }
    const parts = rest.split(':');
    if (parts[0] === '') {
      this.controlling = { parent: rest.slice(1) };
      return;
    }
    if (parts.length < 4) this.fail(`invalid controlling user line "${clip(rest)}"`);
    this.controlling = { user: parts[0], parent: parts.slice(3).join(':') };
  }

  private parseRecipient(rest: string): void {
    const colon = rest.indexOf(':');
    if (colon < 0) this.fail('R line without ":"');
    const flags = rest.slice(0, colon);
    if (!/^[A-Za-z]*$/.test(flags)) this.fail(`invalid recipient flags "${clip(flags)}"`);

    const rcpt: QueueRecipient = {
      ...this.rcpt,
      address: stripAngles(this.text(rest.slice(colon + 1))),
      state: this.rcpt?.state ?? 'pending',
    };
    if (this.controlling !== undefined) {
      rcpt.parent = this.controlling.parent;
      if (this.controlling.user !== undefined) rcpt.ctladdr = this.controlling.user;
    }
    if (flags.includes('N')) {
      const words = [...flags].filter((c) => c in LETTER_NOTIFY).map((c) => LETTER_NOTIFY[c]);
      rcpt.notify = words.length > 0 ? words : ['NEVER'];
    }
    this.item.recipients.push(rcpt);
    this.rcpt = undefined;
  }

  private parseHeader(line: string): void {
    if (this.rcpt !== undefined) this.fail('recipient lines without an R line');
    if (line[1] !== '?') this.fail('H line without "?" flags');
    const close = line.indexOf('?', 2);
    if (close < 0) this.fail('H line without closing "?"');
    this.header = [this.text(line.slice(close + 1))];
    if (this.literal && !this.keepsConditionalHeader(line.slice(2, close))) {
      this.header = undefined;
      this.droppedHeader = true;
    }
  }

  /**
   * Decides a conditional header of sendmail's ("H?P?Return-Path: <$g>"),
   * which goes out only through a mailer with one of the flags, or
   * ("H?${auth_type}?...") only when the macro is set. Posthorn's mailers all
   * add Date:, From: and Message-Id: (flags D, F and M) and write their own
   * Return-Path: (P), so the other flags' headers are left out.
   */
  private keepsConditionalHeader(condition: string): boolean {
    if (condition === '') return true;
    if (condition.startsWith('$')) {
      const name = condition.startsWith('${') ? condition.slice(2, -1) : condition.slice(1);
      return this.item.macros.has(name.length === 1 ? name : `{${name}}`);
    }
    return /[DFM]/.test(condition);
  }

  private endHeader(): void {
    if (this.header === undefined) return;
    this.item.headers.push(this.header.join('\r\n'));
    this.header = undefined;
  }

  private recipient(): Partial<QueueRecipient> {
    this.rcpt ??= {};
    return this.rcpt;
  }

  private integer(text: string, signed: boolean): number {
    const pattern = signed ? /^-?[0-9]+$/ : /^[0-9]+$/;
    const value = Number(text);
    if (!pattern.test(text) || !Number.isSafeInteger(value)) {
      this.fail(`invalid number "${clip(text)}"`);
    }
    return value;
  }

  private text(escaped: string): string {
    if (this.literal) return escaped;
    const value = unescapeField(escaped);
    if (value === undefined) this.fail('invalid backslash escape');
    return value;
  }

  private fail(reason: string): never {
    throw new QueueFileError(this.lineNumber, reason);
  }
}

function stripAngles(address: string): string {
  if (address.length >= 2 && address.startsWith('<') && address.endsWith('>')) {
    return address.slice(1, -1);
  }
  return address;
}

/** Shortens a line for an error message. */
function clip(text: string): string {
  return text.length > 40 ? text.slice(0, 40) + '...' : text;
}
