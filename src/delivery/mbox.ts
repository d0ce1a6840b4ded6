// The built-in local mailer: appends a message to <MailboxDirectory>/<user> in
// mbox format, under a dot-lock (<user>.lock, created with O_EXCL). A failed
// append truncates the mailbox back to its original length, so a reader never
// reads half a message. As sendmail's mail.local, it writes only to a regular
// file with one link: a symbolic link, a hard link, a FIFO or a folder put in
// place of a mailbox fails with 5.2.0, and so does a mailbox of a user in
// /etc/passwd that another user owns. A new mailbox of such a user is given
// to the user.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { userByName } from '../aliases/passwd';
import { openReadStreamNoFollow } from '../queue/no-follow';

export interface MboxMessage {
  /** Envelope sender; "" (the null sender) is written as MAILER-DAEMON. */
  sender: string;
  /** Header lines without CRLF; folds written as "\r\n\t" are kept as folds. */
  headers: string[];
  /** The data file: body bytes with CRLF line ends. */
  dataPath: string;
  /** Time of delivery for the "From " line. */
  date: Date;
}

export interface MboxOptions {
  /** A lock file older than this is removed as stale (default 5 minutes). */
  staleLockMs?: number;
  /** How long to wait for another process's lock (default 30 seconds). */
  lockWaitMs?: number;
}

export type LocalResult =
  | { status: 'sent' }
  | { status: 'tempfail' | 'permfail'; dsn: string; text: string };

const SAFE_USER = /^[a-z0-9_][a-z0-9._-]*$/;
const LOCK_RETRY_MS = 50;

/**
 * Maps a local recipient to a mailbox name: the local part in lower case
 * without a "+detail" suffix. Returns undefined for names that are not safe
 * as a file name.
 */
export function mailboxName(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = (at < 0 ? address : address.slice(0, at)).toLowerCase();
  const user = local.split('+')[0];
  if (!SAFE_USER.test(user) || user.includes('..') || user.length > 64) return undefined;
  return user;
}

/** Formats a date as asctime(3) does: "Tue Jun 20 12:14:04 2006". */
export function asctime(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number): string => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const day = String(d.getDate()).padStart(2, ' ');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${day} ${time} ${d.getFullYear()}`;
}

/**
 * Converts CRLF to LF and quotes lines that start with "From " as ">From ",
 * chunk by chunk. A CR at the end of a chunk and the first bytes of a line are
 * held back until the next chunk shows what follows them.
 */
export class MboxBodyWriter {
  private held = '';
  private atLineStart = true;

  push(chunk: Buffer): Buffer {
    const text = this.held + chunk.toString('latin1');
    this.held = '';
    let out = '';
    let pos = 0;
    while (pos < text.length) {
      if (this.atLineStart && text.length - pos < 5 && 'From '.startsWith(text.slice(pos))) {
        this.held = text.slice(pos);
        break;
      }
      if (this.atLineStart && text.startsWith('From ', pos)) out += '>';
      const lf = text.indexOf('\n', pos);
      const end = lf < 0 ? text.length : lf + 1;
      let line = text.slice(pos, end);
      if (lf < 0 && line.endsWith('\r')) {
        this.held = '\r';
        line = line.slice(0, -1);
      }
      out += line.endsWith('\r\n') ? line.slice(0, -2) + '\n' : line;
      this.atLineStart = lf >= 0;
      pos = end;
      if (this.held !== '') break;
    }
    return Buffer.from(out, 'latin1');
  }

  /** Returns what is still held back, ending the message with a blank line. */
  finish(): Buffer {
    let tail = this.held;
    this.held = '';
    if (tail !== '' || !this.atLineStart) tail += '\n';
    return Buffer.from(tail + '\n', 'latin1');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Takes the dot-lock; returns false when another holder kept it past `lockWaitMs`.
 * NOTE: a program that locks the mailbox only with flock() or fcntl() is not seen.
 */
export async function acquireLock(lockPath: string, opts: Required<MboxOptions>): Promise<boolean> {
  const deadline = Date.now() + opts.lockWaitMs;
  for (;;) {
    try {
      const handle = await fs.promises.open(lockPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const stat = await fs.promises.stat(lockPath).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > opts.staleLockMs) {
      await fs.promises.unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) return false;
    await sleep(LOCK_RETRY_MS);
  }
}

/**
 * Returns the "From " line, Return-Path: and the header block with the blank
 * line after it, LF line ends. A header line that starts with "From " (a
 * field "From : x", which RFC 822 allowed) is quoted as ">From " like a body
 * line, or a mailbox reader would take it for the start of another message.
 */
export function mboxHead(sender: string, headers: string[], date: Date): Buffer {
  const from = sender === '' ? 'MAILER-DAEMON' : sender;
  const lines = headers.map((h) => h.replace(/\r\n/g, '\n').replace(/(^|\n)From /g, '$1>From '));
  return Buffer.from([`From ${from} ${asctime(date)}`, `Return-Path: <${sender}>`, ...lines, '', ''].join('\n'), 'latin1');
}

/**
 * Writes all of `data` at the end of the file. write() may write less than it
 * was given, without an error, when a file size limit or a full file system is
 * reached in the middle. The rest is then written again, which fails with the
 * reason, so a short write never passes for a whole message.
 */
export async function writeAll(handle: fs.promises.FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    if (bytesWritten <= 0) throw Object.assign(new Error('write returned 0'), { code: 'EIO' });
    offset += bytesWritten;
  }
}

/** Writes the head, the body of the data file (CRLF to LF, "From " quoted) and the blank line after it, then syncs. */
export async function appendMbox(handle: fs.promises.FileHandle, head: Buffer, data: AsyncIterable<unknown>): Promise<void> {
  await writeAll(handle, head);
  const body = new MboxBodyWriter();
  for await (const chunk of data) {
    const out = body.push(chunk as Buffer);
    if (out.length > 0) await writeAll(handle, out);
  }
  await writeAll(handle, body.finish());
  await handle.sync();
}

/** open() flags for appending: no link followed, no wait on a FIFO. */
export const APPEND_FLAGS =
  fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * Checks an opened mailbox as mail.local does: a regular file with one link.
 * Returns mail.local's text for a file that is not, or undefined.
 */
export function mailboxProblem(file: string, st: fs.Stats): string | undefined {
  if (!st.isFile()) return `${file}: irregular file`;
  if (st.nlink !== 1) return `${file}: too many links`;
  return undefined;
}

/**
 * Appends `msg` to the mailbox of `address` and syncs it to disk before
 * returning success. Invalid user names fail permanently with 5.1.1; a busy
 * lock or an I/O error fails temporarily.
 */
export async function deliverToMailbox(
  mailboxDir: string,
  address: string,
  msg: MboxMessage,
  options: MboxOptions = {},
): Promise<LocalResult> {
  const opts = { staleLockMs: 5 * 60 * 1000, lockWaitMs: 30 * 1000, ...options };
  const user = mailboxName(address);
  if (user === undefined) return { status: 'permfail', dsn: '5.1.1', text: 'User unknown' };
  // NOTE: there is no user database; every valid name gets a mailbox file.

  const mailbox = path.join(mailboxDir, user);
  const lockPath = `${mailbox}.lock`;
  try {
    if (!(await acquireLock(lockPath, opts))) {
      return { status: 'tempfail', dsn: '4.2.0', text: `Mailbox ${user} is locked` };
    }
  } catch (err) {
    return { status: 'tempfail', dsn: '4.3.0', text: `Cannot lock mailbox ${user}: ${(err as Error).message}` };
  }

  try {
    return await appendUnderLock(mailbox, msg);
  } finally {
    await fs.promises.unlink(lockPath).catch(() => undefined);
  }
}

/** Returns the account a mailbox belongs to, when Posthorn runs as root and the name is a user other than root. */
function mailboxOwner(user: string): { uid: number; gid: number } | undefined {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return undefined;
  const account = userByName(user);
  return account !== undefined && account.uid !== 0 ? { uid: account.uid, gid: account.gid } : undefined;
}

async function appendUnderLock(mailbox: string, msg: MboxMessage): Promise<LocalResult> {
  const user = path.basename(mailbox);
  const owner = mailboxOwner(user);
  let handle: fs.promises.FileHandle;
  let st: fs.Stats;
  try {
    // O_NOFOLLOW: a link planted as the mailbox would make root append to its
    // target; O_NONBLOCK: a FIFO would make open() wait for a reader for ever.
    handle = await fs.promises.open(mailbox, APPEND_FLAGS, 0o600);
    st = await handle.stat();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ELOOP: a symbolic link; ENXIO: a FIFO without a reader; EISDIR: a folder.
    if (code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR') {
      return { status: 'permfail', dsn: '5.2.0', text: `${mailbox}: irregular file` };
    }
    return { status: 'tempfail', dsn: '4.3.0', text: `Cannot open mailbox: ${(err as Error).message}` };
  }
  const problem = mailboxProblem(mailbox, st);
  // A mailbox that another user created (in a mail folder anyone may write to) would let that user read the mail.
  const wrongOwner = owner !== undefined && st.uid !== owner.uid && st.uid !== 0;
  if (problem !== undefined || wrongOwner) {
    await handle.close();
    return { status: 'permfail', dsn: '5.2.0', text: problem ?? `${mailbox}: wrong ownership (${st.uid})` };
  }
  const originalLength = st.size;
  try {
    // A new (empty) mailbox becomes the user's, as mail.local makes it. One
    // that root owns from before is left as it is.
    if (owner !== undefined && st.size === 0 && st.uid === 0) await handle.chown(owner.uid, owner.gid);
    await appendMbox(handle, mboxHead(msg.sender, msg.headers, msg.date), await openReadStreamNoFollow(msg.dataPath));
    return { status: 'sent' };
  } catch (err) {
    await handle.truncate(originalLength).catch(() => undefined);
    return { status: 'tempfail', dsn: '4.3.0', text: `Write to mailbox failed: ${(err as Error).message}` };
  } finally {
    await handle.close();
  }
}
