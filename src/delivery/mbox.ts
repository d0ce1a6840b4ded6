// The built-in local mailer: appends a message to <MailboxDirectory>/<user> in
// mbox format, under a dot-lock (<user>.lock, created with O_EXCL). A failed
// append truncates the mailbox back to its original length, so a reader never
// sees half a message.

import * as fs from 'node:fs';
import * as path from 'node:path';
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

/** Takes the dot-lock; returns false when another holder kept it past `lockWaitMs`. */
async function acquireLock(lockPath: string, opts: Required<MboxOptions>): Promise<boolean> {
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

function envelopeHead(msg: MboxMessage): string {
  const sender = msg.sender === '' ? 'MAILER-DAEMON' : msg.sender;
  const headers = msg.headers.map((h) => h.replace(/\r\n/g, '\n'));
  return [`From ${sender} ${asctime(msg.date)}`, `Return-Path: <${msg.sender}>`, ...headers, '', ''].join('\n');
}

async function appendMessage(handle: fs.promises.FileHandle, msg: MboxMessage): Promise<void> {
  await handle.write(Buffer.from(envelopeHead(msg), 'latin1'));
  const body = new MboxBodyWriter();
  for await (const chunk of await openReadStreamNoFollow(msg.dataPath)) {
    const out = body.push(chunk as Buffer);
    if (out.length > 0) await handle.write(out);
  }
  await handle.write(body.finish());
  await handle.sync();
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

async function appendUnderLock(mailbox: string, msg: MboxMessage): Promise<LocalResult> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(mailbox, 'a', 0o600);
  } catch (err) {
    return { status: 'tempfail', dsn: '4.3.0', text: `Cannot open mailbox: ${(err as Error).message}` };
  }
  const originalLength = (await handle.stat()).size;
  try {
    await appendMessage(handle, msg);
    return { status: 'sent' };
  } catch (err) {
    await handle.truncate(originalLength).catch(() => undefined);
    return { status: 'tempfail', dsn: '4.3.0', text: `Write to mailbox failed: ${(err as Error).message}` };
  } finally {
    await handle.close();
  }
}
