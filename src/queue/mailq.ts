// The mailq (sendmail -bp) listing, in the layout of sendmail's printqueue()
// and print_single_queue() (sendmail/queue.c, 8.13 to 8.18), byte for byte.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorCode } from './lock';
import { decodeControlFile, parseControlFile, QueueFileError } from './qf';
import { ControlFileKind, QueueStore } from './store';
import { QueueItem } from './types';
import { readBytesNoFollow, readBytesNoFollowSync } from './no-follow';

export interface MailqEntry {
  id: string;
  /** The parsed control file; undefined prints " (no control file)". */
  item?: QueueItem;
  /** Size of the df file in bytes; -1 when it cannot be read, as in sendmail. */
  size: number;
  /** Whether a process holds the item's lock; printed as "*". */
  locked: boolean;
  /** Tried more recently than MinQueueAge; printed as "-" when not locked. */
  tooYoung?: boolean;
  /** A lost item (Qf, listed by -qL); printed as "?" when not locked, as sendmail does. */
  lost?: boolean;
  /** The reason the control file could not be read, e.g. "job completed". */
  error?: string;
}

export interface MailqOptions {
  /** `mailq -v`: priority column, wider fields, per-recipient status. */
  verbose?: boolean;
  /** MaxQueueRun: print only this many entries (0 means all). */
  maxQueueRun?: number;
}

const TITLES = '-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------';
const VERBOSE_TITLES =
  '-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Formats the listing of one queue directory followed by the "Total requests" line. */
export function formatMailq(dir: string, entries: MailqEntry[], opts: MailqOptions = {}): string {
  return formatQueueDirectory(dir, entries, opts) + `\t\tTotal requests: ${entries.length}\n`;
}

/** Formats the listing of one queue directory, without the total line. */
export function formatQueueDirectory(
  dir: string,
  entries: MailqEntry[],
  opts: MailqOptions = {},
): string {
  const count = entries.length;
  if (count === 0) return `${dir} is empty\n`;

  let out = formatMailqHeader(dir, count, opts);
  const max = opts.maxQueueRun ?? 0;

  const shown = max > 0 ? entries.slice(0, max) : entries;
  for (const entry of shown) out += formatEntry(entry, opts.verbose === true);
  return out;
}

/** The lines before the entries: directory, request count and column titles ("is empty" for none). */
export function formatMailqHeader(dir: string, count: number, opts: MailqOptions = {}): string {
  if (count === 0) return `${dir} is empty\n`;
  const max = opts.maxQueueRun ?? 0;
  let out = `\t\t${dir} (${count} request${count === 1 ? '' : 's'}`;
  if (max > 0 && count > max) out += `, only ${max} printed`;
  return out + ')\n' + (opts.verbose ? VERBOSE_TITLES : TITLES) + '\n';
}

/** Formats one entry of the listing. */
export function formatEntry(entry: MailqEntry, verbose: boolean): string {
  let out = entry.id.padStart(13);
  // A damaged control file's error quotes its line, which may hold control bytes.
  if (entry.error !== undefined) return `${out} (${entry.error.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '?')})\n`;

  out += statusMark(entry);
  const item = entry.item;
  if (item === undefined) return `${out} (no control file)\n`;

  out += senderLine(item, entry.size, verbose);
  const width = verbose ? 100 : 60;
  if (item.quarantine) out += `\n     QUARANTINE: ${oneLine(item.quarantine, width)}`;

  if (item.statusMessage || item.bodyType) {
    out += `\n    ${(item.bodyType ?? '').slice(0, 10).padStart(10)}`;
    if (item.statusMessage) out += `   (${oneLine(item.statusMessage, width)})`;
  }

  for (const rcpt of item.recipients) {
    if (rcpt.state !== 'pending' && rcpt.state !== 'deferred') continue;
    if (!verbose) {
      out += '\n\t\t\t\t\t ' + printable(`<${rcpt.address}>`, 38);
      continue;
    }
    out += '\n\t\t\t\t\t\t' + printable(`<${rcpt.address}>`, 71);
    if (rcpt.status) out += `\n\t\t (${oneLine(rcpt.status, 100)})`;
  }

  if (item.created === 0) out += ' (no control file)';
  return out + '\n';
}

/** Returns the character after the id: "*" locked, "?" lost (-qL), "-" too young, else a space. */
function statusMark(entry: MailqEntry): string {
  if (entry.locked) return '*';
  if (entry.lost) return '?';
  if (entry.tooYoung) return '-';
  return ' ';
}

function senderLine(item: QueueItem, size: number, verbose: boolean): string {
  const submitted = ctime(item.created);
  const sender = `<${item.sender}>`;
  if (!verbose) {
    return `${String(size).padStart(8)} ${submitted.slice(0, 16)} ${printable(sender, 39)}`;
  }

  const warned = item.flags.includes('w') ? '+' : ' ';
  const priority = String(item.priority).padStart(10);
  const time = submitted.slice(4, 16);
  return `${String(size).padStart(8)} ${priority}${warned}${time} ${printable(sender, 78)}`;
}

/** Formats a time as C's ctime() does, in local time: "Tue Jun 20 12:14:04 2006\n". */
export function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const day = String(d.getDate()).padStart(2, ' ');
  const clock = [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day} ${clock} ${d.getFullYear()}\n`;
}

/**
 * Prints at most `max` columns of `text` as sendmail's prtstr() does: a
 * backslash is doubled and a byte outside printable ASCII becomes \ooo. Text
 * characters above U+00FF are taken as their UTF-8 bytes.
 */
export function printable(text: string, max: number): string {
  const bytes: number[] = [];
  for (const c of text) {
    const code = c.codePointAt(0) ?? 0;
    if (code <= 0xff) bytes.push(code);
    else bytes.push(...Buffer.from(c, 'utf8'));
  }

  let out = '';
  let left = max;
  let i = 0;
  while (left-- > 0 && i < bytes.length && bytes[i] !== 0) {
    const c = bytes[i++];
    if (c === 0x5c) {
      if (left-- > 0) out += '\\\\';
    } else if (c >= 0x20 && c < 0x7f) {
      out += String.fromCharCode(c);
    } else {
      left -= 3;
      if (left > 0) out += '\\' + c.toString(8).padStart(3, '0');
    }
  }
  return out;
}

/** Truncates a status text; newlines become spaces, as sendmail stores them. */
function oneLine(text: string, max: number): string {
  // Control bytes in a status (a next hop's text, a planted qf) become '?', so a terminal does not act on them.
  return text.replace(/[\r\n]/g, ' ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?').slice(0, max);
}

/** Reads every item of one kind from `store` for formatMailq(), in directory order. */
export async function readMailqEntries(
  store: QueueStore,
  kind: ControlFileKind = 'qf',
): Promise<MailqEntry[]> {
  const entries: MailqEntry[] = [];
  const ids = await store.list(kind);
  // Reads run in batches, because one file at a time makes mailq slow on deep queues.
  for (let start = 0; start < ids.length; start += MAILQ_READ_BATCH) {
    const batch = ids.slice(start, start + MAILQ_READ_BATCH);
    entries.push(...(await Promise.all(batch.map((id) => readMailqEntry(store, id, kind)))));
  }
  return entries;
}

/** Files read at once by readMailqEntries(). */
const MAILQ_READ_BATCH = 64;

/** Reads what the listing shows of one item: lock, df size and control file. */
export async function readMailqEntry(store: QueueStore, id: string, kind: ControlFileKind): Promise<MailqEntry> {
  const entry: MailqEntry = { id, size: -1, locked: await store.isLocked(id), lost: kind === 'Qf' };
  try {
    entry.size = (await fs.promises.stat(store.dataPath(id))).size;
  } catch {
    // sendmail prints -1 for a df it cannot stat.
  }

  try {
    entry.item = await readControl(store, id, kind);
  } catch (err) {
    entry.error = mailqErrorText(err);
  }
  return entry;
}

/**
 * Reads an entry as readMailqEntry() does (same fields and error texts) with
 * synchronous calls, for mailq over deep queues. Returns `undefined` when the
 * item has a lock file, because the lock's liveness test is asynchronous.
 */
export function readMailqEntrySync(store: QueueStore, id: string, kind: ControlFileKind): MailqEntry | undefined {
  try {
    fs.accessSync(path.join(store.dir, `lf${id}`));
    return undefined;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') return undefined;
  }
  const entry: MailqEntry = { id, size: -1, locked: false, lost: kind === 'Qf' };
  try {
    entry.size = fs.statSync(store.dataPath(id)).size;
  } catch {
    // sendmail prints -1 for a df it cannot stat.
  }
  try {
    entry.item = parseControlFile(readControlTextSync(store, id, kind), id);
  } catch (err) {
    entry.error = mailqErrorText(err);
  }
  return entry;
}

/** Reads the control file text as QueueStore.read() finds it (qf, else hf), or the Qf file for -qL. */
function readControlTextSync(store: QueueStore, id: string, kind: ControlFileKind): string {
  if (kind === 'Qf') return decodeControlFile(readBytesNoFollowSync(store.controlPath(id, 'Qf')));
  try {
    return decodeControlFile(readBytesNoFollowSync(store.controlPath(id, 'qf')));
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
    return decodeControlFile(readBytesNoFollowSync(store.controlPath(id, 'hf')));
  }
}

async function readControl(store: QueueStore, id: string, kind: ControlFileKind): Promise<QueueItem> {
  if (kind !== 'Qf') return store.read(id);

  const text = decodeControlFile(await readBytesNoFollow(store.controlPath(id, 'Qf')));
  return parseControlFile(text, id);
}

function mailqErrorText(err: unknown): string {
  if (err instanceof QueueFileError) return `unreadable control file: ${err.message}`;

  const code = errorCode(err);
  if (code === 'ENOENT') return 'job completed';
  if (code === 'EPERM' || code === 'EACCES') return 'permission denied';
  return err instanceof Error ? err.message : String(err);
}
