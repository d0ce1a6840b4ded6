// Local submission (-bm, -t): reads a message from standard input the way
// sendmail does, queues it durably, and starts its delivery.
//
// Input lines end with LF (a CR before the LF is dropped). Unless -i/-oi is
// given, a line with a single "." ends the message. With -t the recipients come
// from To:, Cc:, Bcc: and Apparently-To: (Resent-To:, Resent-Cc: and
// Resent-Bcc: when the message has Resent- headers) and the Bcc: headers are
// removed. Recipients named on the command line as well are added to them, as
// sendmail 8.17 does (it leaves them out only when built with _FFR_FIX_DASHT).

import type { Readable } from 'node:stream';
import * as os from 'node:os';
import type { Config } from '../config/types';
import type { QueueStore } from '../queue/store';
import type { DataFileWriter } from '../queue/data-file';
import type { QueueItem, QueueRecipient } from '../queue/types';
import type { Logger } from '../log/logger';
import { initialPriority, precedenceClass } from '../queue/priority';
import { parsePath, splitAddress } from '../smtp/address';
import { headerAddresses, type HeaderAddress } from '../smtp/headeraddress';
import { queueBounce } from '../delivery/bounce';
import { addMissingHeaders, headerValue, messageSize, receivedHeader } from '../server/headers';
import { ExitError, EX_DATAERR, EX_OK, EX_TEMPFAIL, EX_USAGE } from './sysexits';
import { VERSION } from '../version';
import { userByName } from '../aliases/passwd';
import { SubmissionReader } from './submission-reader';
import { guardSubmission } from './submission-signals';
import type { DsnFlags } from './dsn-flags';
import type { CliArgs } from './args';

export interface SubmitOptions {
  config: Config;
  store: QueueStore;
  logger: Logger;
  input: Readable;
  recipients: string[];
  readRecipients: boolean;
  ignoreDots: boolean;
  sender?: string;
  /** -F: the sender's full name for a From: header that the message lacks. */
  fullName?: string;
  /** -N, -R, -V and -B. */
  dsn?: DsnFlags;
  /** -Q<reason>: the message is queued quarantined (hf file) with this reason. */
  quarantine?: string;
  /** -M and -oM: macros such as $r (protocol) and $s (sender host) for the Received: header and the log. */
  macros?: ReadonlyMap<string, string>;
  /**
   * False when the store is only a private copy that still has to reach the
   * daemon (submit-to-daemon.ts): a signal during the commit then ends the
   * process by that signal, never with status 0, since nothing is queued yet.
   */
  final?: boolean;
}

/** Returns the parts of the submission options that come from the command line and standard input. */
export function submissionInputs(
  args: CliArgs,
  config: Config,
): Pick<SubmitOptions, 'input' | 'recipients' | 'readRecipients' | 'ignoreDots' | 'sender' | 'fullName' | 'dsn' | 'quarantine' | 'macros'> {
  return {
    input: process.stdin,
    recipients: args.recipients,
    readRecipients: args.readRecipients,
    ignoreDots: args.ignoreDots || config.options.get('IgnoreDots') === true,
    sender: args.sender,
    fullName: args.fullName,
    dsn: args.dsn,
    quarantine: args.quarantine,
    macros: args.macros,
  };
}

/** The recipient headers of sendmail's header table (H_RCPT), Apparently-To: included. */
const RECIPIENT_HEADERS = ['to', 'cc', 'bcc', 'apparently-to'];
const RESENT_RECIPIENT_HEADERS = ['resent-to', 'resent-cc', 'resent-bcc'];

function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** Users whom sendmail's class t trusts to set the sender with -f: the cf's root, daemon and uucp, and TrustedUser. */
function trustedUser(config: Config, user: string): boolean {
  if (process.getuid?.() === 0 || ['root', 'daemon', 'uucp'].includes(user)) return true;
  const trusted = config.options.get('TrustedUser');
  return typeof trusted === 'string' && trusted !== '' && trusted === user;
}

/**
 * Returns the text of sendmail's X-Authentication-Warning: header for a -f
 * that an untrusted user gave with a name other than their own. Returns
 * undefined unless PrivacyOptions has authwarnings (goaway includes it).
 */
function senderWarning(config: Config, user: string, requested: string | undefined): string | undefined {
  if (requested === undefined || requested === user || !config.privacyOptions.has('authwarnings') || trustedUser(config, user)) return undefined;
  return `${config.hostName}: ${user} set sender to ${requested.replace(/[\x00-\x1f\x7f]/g, '?')} using -f`;
}

/**
 * Returns the full name of the password file's GECOS field for a sender that
 * is a local account ("root@<our name>"), as sendmail fills $x for the From:
 * it adds ("From: root <root@host>") when -F is not given.
 */
function accountFullName(sender: string, hostName: string): string | undefined {
  const at = sender.lastIndexOf('@');
  if (at < 0 || sender.slice(at + 1).toLowerCase() !== hostName.toLowerCase()) return undefined;
  const name = userByName(sender.slice(0, at))?.fullName.trim();
  return name === undefined || name === '' ? undefined : name;
}

/** The outcome of a submission. */
export interface SubmitResult {
  /** Queue id of the message, or undefined when no recipient was valid. */
  id?: string;
  /** Queue ids of the bounces about invalid recipients, at most one. */
  bounceIds: string[];
  /** sendmail's "address... reason" for each invalid recipient. */
  errors: string[];
  /** True when one of the errors makes the exit status EX_USAGE (see usageError()). */
  usage: boolean;
}

/** A recipient address that failed its check. */
interface RejectedAddress {
  /** The address as written, made printable and cut to a bounded length. */
  address: string;
  /** The reason, e.g. "Hostname required". */
  reason: string;
  /** The SMTP reply code and enhanced status code that go with the reason. */
  code: number;
  enhanced: string;
  /** Taken from a header by -t, not from the command line. */
  fromHeader?: boolean;
  /** Unbalanced, and without its brackets and quotes still invalid (e.g. "bad<<x@": Hostname required). */
  alsoInvalid?: boolean;
}

/**
 * Tells whether a rejected recipient makes the exit status EX_USAGE. sendmail
 * 8.17 exits 0 after a header address with unbalanced brackets or quotes (its
 * prescan() error), and 64 after one that the rulesets reject (Hostname
 * required, Invalid route address) or any bad command-line address.
 */
function usageError(r: RejectedAddress): boolean {
  return r.fromHeader !== true || !r.reason.startsWith('Unbalanced') || r.alsoInvalid === true;
}

type CheckedAddress = { ok: true; address: string } | { ok: false; rejected: RejectedAddress };

/** Maximum length of an address in an error line or a bounce: the SMTP path limit (RFC 5321 4.5.3.1.3). */
const SHOWN_ADDRESS_LENGTH = 256;

/** Returns the address with '?' for control and 8-bit characters, cut to SHOWN_ADDRESS_LENGTH. */
function shownAddress(address: string): string {
  const printable = address.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > SHOWN_ADDRESS_LENGTH ? `${printable.slice(0, SHOWN_ADDRESS_LENGTH)}...` : printable;
}

/** Returns sendmail's "address... reason" line for a rejected address. */
function rejectedLine(r: RejectedAddress): string {
  return `${r.address}... ${r.reason}`;
}

/** Checks and normalises one address from the command line or a header. */
function examineAddress(address: string): CheckedAddress {
  const parsed = parsePath(address.includes('<') ? address : `<${address}>`, 'rcpt');
  if (parsed.ok) return { ok: true, address: parsed.address };
  // The reason follows the last "... ", because the address itself may contain '>' or '<'.
  const cut = parsed.text.lastIndexOf('... ');
  const reason = cut < 0 ? parsed.text : parsed.text.slice(cut + 4);
  return { ok: false, rejected: { address: shownAddress(address), reason, code: parsed.code, enhanced: parsed.enhanced } };
}

/**
 * Checks the -f address. A bad one ends the command with sendmail's
 * "addr... reason" and EX_USAGE, the code sendmail 8.17 gives when an
 * address had errors.
 */
function checkAddress(address: string): string {
  const checked = examineAddress(address);
  if (!checked.ok) throw new ExitError(rejectedLine(checked.rejected), EX_USAGE);
  return checked.address;
}

/**
 * Returns the exit status of a submission: EX_USAGE when a recipient was
 * invalid, as sendmail 8.17 exits then, else `status`. Another failure status
 * (a temporary failure, say) wins, as in sendmail, where address errors set
 * EX_USAGE only while the status is still EX_OK.
 */
export function submissionStatus(result: SubmitResult, status = EX_OK): number {
  return result.usage && status === EX_OK ? EX_USAGE : status;
}

/**
 * Collects -t recipients and removes Bcc: and Resent-Bcc: from the headers.
 * As in sendmail, a message with any Resent- header is being resent, and
 * only Resent-To:, Resent-Cc: and Resent-Bcc: name its recipients.
 */
function headerRecipients(headers: string[]): HeaderAddress[] {
  const names = headers.map((header) => header.slice(0, Math.max(header.indexOf(':'), 0)).trim().toLowerCase());
  const resent = names.some((name) => name.startsWith('resent-'));
  const recipientHeaders = resent ? RESENT_RECIPIENT_HEADERS : RECIPIENT_HEADERS;
  const found: HeaderAddress[] = [];
  headers.forEach((header, i) => {
    if (!recipientHeaders.includes(names[i])) return;
    // A loop, not push(...list): a header with MaxHeadersLength=0 can hold a hundred thousand addresses.
    for (const address of headerAddresses(header.slice(header.indexOf(':') + 1).replace(/\r\n/g, ''))) found.push(address);
  });
  for (let i = headers.length - 1; i >= 0; i--) {
    if (names[i] === 'bcc' || names[i] === 'resent-bcc') headers.splice(i, 1);
  }
  return found;
}

/**
 * Reads, checks and queues one message. Invalid recipients do not stop the
 * others: as sendmail 8.17 does, the message is queued for the valid ones,
 * and a bounce about the invalid ones is queued to the sender. Each invalid
 * one is shown on standard error, and submissionStatus() gives the exit status.
 */
export async function submitMessage(opts: SubmitOptions): Promise<SubmitResult> {
  const { config, store } = opts;
  // A rejected -f ends the command before any queue file exists.
  const user = userName();
  const sender = opts.sender !== undefined ? checkSender(opts.sender, config.hostName) : `${user}@${config.hostName}`;

  const id = store.newId();
  const opened = store.openDataFile(id);
  // The guard waits for the open, so a signal during it cannot leave a df behind.
  let queued = false;
  let status = EX_OK;
  const guard = guardSubmission(async () => {
    await opened.catch(() => undefined);
    await store.abort(id);
  });
  try {
    const writer = await opened;
    const reader = await readMessage(opts, id, writer);
    const { recipients, rejected } = await messageRecipients(opts, id, reader.headers);
    // Printed at once, as sendmail prints them while it reads the addresses.
    for (const r of rejected) process.stderr.write(`posthorn: ${rejectedLine(r)}\n`);
    if (rejected.some(usageError)) status = EX_USAGE;

    const warning = senderWarning(config, user, opts.sender);
    const fields = { id, config, sender, recipients, headers: reader.headers, user, size: writer.size, warning };
    const fullName = opts.fullName ?? accountFullName(sender, config.hostName);
    const item = buildItem({ ...fields, fullName, dsn: opts.dsn ?? {}, cliMacros: opts.macros });
    if (opts.quarantine) item.quarantine = opts.quarantine.replace(/[\r\n]/g, '');

    // After a signal the guard removes the files and ends the process, so this
    // submission must neither commit nor return.
    if (!guard.beginCommit()) return await new Promise<never>(() => undefined);
    if (recipients.length > 0) {
      await commitItem(opts, item);
      queued = true;
      if (warning !== undefined) opts.logger.child(id).info(`Authentication-Warning: ${warning}`);
      logSubmission(opts.logger, item, user);
    }
    // The bounce copies the df, so the df of a message without valid recipients goes only after it.
    const bounceIds = rejected.length > 0 ? await bounceRejected(opts, item, rejected) : [];
    if (recipients.length === 0) {
      await store.abort(id);
      queued = bounceIds.length > 0;
    }
    return { id: recipients.length > 0 ? id : undefined, bounceIds, errors: rejected.map(rejectedLine), usage: rejected.some(usageError) };
  } finally {
    guard.release(queued && opts.final !== false, status);
  }
}

/**
 * Queues a bounce to the sender about the invalid recipients, as sendmail
 * 8.17 does for those of -t, with its "553 5.1.3 addr... reason" lines as
 * the transcript. A failure to queue it is logged: the caller still gets
 * the errors and EX_USAGE.
 *
 * NOTE: for invalid command-line recipients sendmail 8.17 saves the message
 * to ~/dead.letter instead (and prints "Saved message in ..."). Posthorn
 * sends the bounce for them too: a dead.letter in the home folder of a
 * program's user (/var/www for www-data) goes unread or may be served to
 * the web, while the bounce reaches the sender's mailbox.
 */
async function bounceRejected(opts: SubmitOptions, item: QueueItem, rejected: RejectedAddress[]): Promise<string[]> {
  const { config, store, logger } = opts;
  const bounced: QueueRecipient[] = rejected.map((r) => ({
    address: r.address,
    notify: opts.dsn?.notify,
    state: 'bounced',
    status: r.reason,
    dsnCode: r.enhanced,
  }));
  const transcript = rejected.map((r) => `${r.code} ${r.enhanced} ${rejectedLine(r)}`);
  try {
    const id = await queueBounce({ config, store, logger }, item, bounced, transcript);
    return id === undefined ? [] : [id];
  } catch (err) {
    logger.child(item.id).error(`failed to queue DSN: ${(err as Error).message}`);
    return [];
  }
}

/**
 * Copies standard input to the data file and checks the header and message
 * size limits. Past MaxMessageSize the input is still read to its end, as
 * sendmail's collect() reads it, but no more of it is written.
 */
async function readMessage(opts: SubmitOptions, id: string, writer: DataFileWriter): Promise<SubmissionReader> {
  const { config, store } = opts;
  const reader = new SubmissionReader(opts.ignoreDots, config.maxHeadersLength);
  const maxSize = config.maxMessageSize;
  let size = 0;
  const write = async (body: Buffer): Promise<void> => {
    size += body.length;
    if (maxSize > 0 && size > maxSize) return;
    await writer.write(body);
  };
  try {
    for await (const chunk of opts.input) {
      for (const body of reader.push(chunk as Buffer)) await write(body);
      if (reader.ended) break;
    }
    for (const body of reader.finish()) await write(body);
    await writer.close();
  } catch (err) {
    await store.abort(id);
    throw new ExitError(`cannot write data file: ${(err as Error).message}`, EX_TEMPFAIL);
  }

  if (reader.headersTooLong) {
    await store.abort(id);
    throw new ExitError(`Headers too large (${config.maxHeadersLength} max)`, EX_DATAERR);
  }
  if (maxSize > 0 && size > maxSize) {
    await store.abort(id);
    throw new ExitError(`Message exceeds maximum fixed size (${maxSize})`, EX_DATAERR);
  }
  return reader;
}

/**
 * Returns the valid recipients of the command line and, with -t, of the
 * headers, and the invalid ones with their reasons.
 *
 * NOTE: sendmail 8.17 prints each error on standard output, some of them
 * two or four times ("Unbalanced '<'" once per closing bracket it makes up),
 * and exits 0 for some unbalanced addresses. Posthorn prints one line per
 * invalid address on standard error and always exits EX_USAGE (64).
 */
async function messageRecipients(opts: SubmitOptions, id: string, headers: string[]): Promise<{ recipients: string[]; rejected: RejectedAddress[] }> {
  const valid = new Set<string>();
  const rejected = new Map<string, RejectedAddress>();
  const take = (address: HeaderAddress, fromHeader: boolean): void => {
    const checked: CheckedAddress = address.unbalanced
      ? { ok: false, rejected: { address: shownAddress(address.address), reason: `Unbalanced '${address.unbalanced}'`, code: 553, enhanced: '5.0.0' } }
      : examineAddress(address.address);
    if (checked.ok) {
      valid.add(checked.address);
      return;
    }
    // The error names "bad<<x@" as written, not the "<x@" inside its brackets.
    if (address.written !== undefined) checked.rejected.address = shownAddress(address.written);
    checked.rejected.fromHeader = fromHeader;
    // sendmail reports such an address twice, and the rulesets' error (Hostname required) sets exit 64.
    if (fromHeader && checked.rejected.reason.startsWith('Unbalanced')) {
      checked.rejected.alsoInvalid = !examineAddress((address.written ?? address.address).replace(/[<>"()]/g, '')).ok;
    }
    if (!rejected.has(checked.rejected.address)) rejected.set(checked.rejected.address, checked.rejected);
  };
  for (const address of opts.recipients) take({ address, unbalanced: false }, false);
  if (opts.readRecipients) for (const address of headerRecipients(headers)) take(address, true);
  const recipients = [...valid];
  if (recipients.length === 0 && rejected.size === 0) {
    await opts.store.abort(id);
    // sendmail 8.17 prints this and exits 0 for -t (checked against Debian's
    // 8.17.1.9); without -t it is a usage error.
    if (opts.readRecipients) throw new ExitError('No recipient addresses found in header', EX_OK);
    throw new ExitError('Recipient names must be specified', EX_USAGE);
  }
  return { recipients, rejected: [...rejected.values()] };
}

async function commitItem(opts: SubmitOptions, item: QueueItem): Promise<void> {
  const { config, store } = opts;
  // DeliveryMode=interactive: the caller delivers at once, under the lock the
  // commit takes; with SuperSafe=Interactive it syncs only what is left after.
  const interactive = config.deliveryMode === 'interactive';
  try {
    await store.commit(item, { lock: interactive, syncLater: interactive && config.superSafe === 'interactive' });
  } catch (err) {
    await store.abort(item.id);
    throw new ExitError(`cannot queue message: ${(err as Error).message}`, EX_TEMPFAIL);
  }
}

/** Checks -f; a name without a domain gets @$j, as sendmail qualifies "-f www-data". */
function checkSender(sender: string, hostName: string): string {
  if (sender === '' || sender === '<>') return '';
  const address = checkAddress(sender);
  return splitAddress(address).domain === '' ? `${address}@${hostName}` : address;
}

interface ItemFields {
  id: string;
  config: Config;
  sender: string;
  recipients: string[];
  headers: string[];
  user: string;
  fullName?: string;
  dsn: DsnFlags;
  size: number;
  cliMacros?: ReadonlyMap<string, string>;
  /** X-Authentication-Warning: text, placed after the Received: header as sendmail places it. */
  warning?: string;
}

/** Macros that -M sets and the control file keeps, as sendmail keeps $r and $s. */
const KEPT_MACROS = ['r', 's'];

function buildItem(f: ItemFields): QueueItem {
  const now = new Date();
  const macros = new Map<string, string>([
    ['j', f.config.hostName],
    ['v', VERSION],
    ['Z', VERSION],
    ['_', `${f.user}@localhost`],
  ]);
  for (const [name, value] of f.cliMacros ?? []) macros.set(name, value);
  const headers = [receivedHeader(macros, { id: f.id, recipients: f.recipients.map((address) => ({ address })) }, now)];
  if (f.warning !== undefined) headers.push(`X-Authentication-Warning: ${f.warning}`);
  headers.push(...f.headers);
  const fullName = f.fullName === undefined ? undefined : displayName(f.fullName);
  // sendmail puts the headers it adds (Date:, From:, Message-Id:) after its own Received: and before the message's.
  const insertAt = f.warning === undefined ? 1 : 2;
  addMissingHeaders(headers, { sender: f.sender, hostName: f.config.hostName, id: f.id, now, fullName, insertAt });

  const size = messageSize(headers, f.size);
  const klass = precedenceClass(headerValue(headers, 'precedence') ?? '');
  return {
    id: f.id,
    created: Math.floor(now.getTime() / 1000),
    lastAttempt: 0,
    attempts: 0,
    priority: initialPriority(size, f.recipients.length, klass),
    bodyType: f.dsn.bodyType,
    flags: retFlags(f.dsn.ret),
    macros: new Map([['_', `${f.user}@localhost`], ...KEPT_MACROS.filter((m) => f.cliMacros?.has(m)).map((m): [string, string] => [m, f.cliMacros!.get(m)!])]),
    sender: f.sender,
    envid: f.dsn.envid,
    ret: f.dsn.ret,
    recipients: f.recipients.map((address) => ({ address, notify: f.dsn.notify, state: 'pending' as const })),
    headers,
    bodySize: f.size,
  };
}

/** Returns the F-line letters for -R, as for RET= over SMTP: "d" when given, plus "n" for hdrs. */
function retFlags(ret: DsnFlags['ret']): string {
  if (ret === undefined) return '';
  return ret === 'HDRS' ? 'dn' : 'd';
}

/** RFC 5322 specials, which a display name may only contain inside quotes. */
const SPECIALS = /[()<>[\]:;@\\,."]/;
const QUOTED_STRING = /^"(?:[^"\\]|\\.)*"$/;

/**
 * Turns a -F value into the display name of a From: header. Each run of CR
 * and LF becomes one space, as sendmail 8.17 does, so the value cannot start
 * a header line of its own. A name with specials is quoted, as sendmail does.
 */
export function displayName(fullName: string): string {
  const name = fullName.replace(/[\r\n]+/g, ' ');
  if (QUOTED_STRING.test(name) || !SPECIALS.test(name)) return name;
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

function logSubmission(logger: Logger, item: QueueItem, user: string): void {
  const size = messageSize(item.headers, item.bodySize);
  const fields = [
    `from=<${item.sender}>`,
    `size=${size}`,
    `class=${precedenceClass(headerValue(item.headers, 'precedence') ?? '')}`,
    `nrcpts=${item.recipients.length}`,
  ];
  const msgid = headerValue(item.headers, 'message-id');
  if (msgid) fields.push(`msgid=${msgid.slice(0, 100)}`);
  const protocol = item.macros.get('r');
  if (protocol) fields.push(`proto=${protocol.slice(0, 20)}`);
  fields.push(`relay=${user}@localhost`);
  logger.child(item.id).info(fields.join(', '));
}
