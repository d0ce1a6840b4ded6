// The end-of-message changes a filter may make, applied to the queue item
// before it is committed: headers, recipients, sender, quarantine and body.

import * as fs from 'node:fs';
import type { QueueItem, QueueRecipient } from '../queue/types';
import { checkMailParams, type EsmtpParam } from '../smtp/params';

interface HeaderEntry {
  /** The whole field, "Name: value", folds as CRLF plus white space. */
  text: string;
  /** Whether filters see it: headers from the client and from filters, not Posthorn's own. */
  user: boolean;
}

/** Splits "Name: value" into name and value; the value keeps its leading space. */
export function splitHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon < 0) return [text, ''];
  return [text.slice(0, colon), text.slice(colon + 1)];
}

export class MessageEditor {
  private readonly entries: HeaderEntry[];
  /**
   * The replacement body from 'b' replies, written to a file beside the df as
   * it comes, so that a filter cannot fill the daemon's memory.
   */
  private pendingBody?: PendingBody;

  /**
   * `clientHeaders` are the header fields the client sent, in order; they are
   * found in `item.headers` between the ones Posthorn added.
   */
  constructor(
    readonly item: QueueItem,
    clientHeaders: readonly string[],
    readonly dataPath: string,
  ) {
    let next = 0;
    this.entries = item.headers.map((text) => {
      const user = next < clientHeaders.length && clientHeaders[next] === text;
      if (user) next++;
      return { text, user };
    });
  }

  /** Returns the headers that filters see, as name and value (leading space included). */
  userHeaders(): [string, string][] {
    return this.entries.filter((e) => e.user).map((e) => splitHeader(e.text));
  }

  /** Appends a header (SMFIR_ADDHEADER). */
  addHeader(name: string, value: string): void {
    this.entries.push({ text: headerField(name, value), user: true });
  }

  /** Inserts a header after `index` headers, counting every header (SMFIR_INSHEADER). */
  insertHeader(index: number, name: string, value: string): void {
    const field = headerField(name, value);
    const at = Math.min(index, this.entries.length);
    this.entries.splice(at, 0, { text: field, user: true });
  }

  /**
   * Changes the `index`-th (from 1) header called `name` that filters see; an
   * empty value deletes it, and a missing one is added (SMFIR_CHGHEADER).
   */
  changeHeader(index: number, name: string, value: string): void {
    const lower = name.toLowerCase();
    let seen = 0;
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (!entry.user || splitHeader(entry.text)[0].toLowerCase() !== lower) continue;
      seen++;
      if (seen !== Math.max(index, 1)) continue;
      if (value.trim() === '') this.entries.splice(i, 1);
      else entry.text = headerField(name, value);
      return;
    }
    if (value.trim() !== '') this.addHeader(name, value);
  }

  /** Adds a recipient with optional ESMTP arguments (NOTIFY=, ORCPT=). */
  addRecipient(address: string, args: string[] = []): void {
    const recipient: QueueRecipient = { address: stripBrackets(address), state: 'pending' };
    for (const arg of args) {
      const eq = arg.indexOf('=');
      const key = (eq < 0 ? arg : arg.slice(0, eq)).toUpperCase();
      const value = eq < 0 ? '' : arg.slice(eq + 1);
      if (key === 'NOTIFY') recipient.notify = value.toUpperCase().split(',');
      else if (key === 'ORCPT') recipient.orcpt = value;
    }
    this.item.recipients.push(recipient);
  }

  /** Removes every recipient whose address matches, ignoring case and angle brackets. */
  deleteRecipient(address: string): void {
    const wanted = stripBrackets(address).toLowerCase();
    this.item.recipients = this.item.recipients.filter((r) => r.address.toLowerCase() !== wanted);
  }

  /**
   * Replaces the envelope sender and applies its MAIL parameters (BODY=,
   * RET=, ENVID=; SIZE= is checked and dropped). Throws on an invalid
   * parameter and then leaves the sender as it was.
   */
  changeSender(address: string, args: string[] = []): void {
    const params: EsmtpParam[] = args.map((arg) => {
      const eq = arg.indexOf('=');
      return eq < 0 ? { key: arg.toUpperCase() } : { key: arg.slice(0, eq).toUpperCase(), value: arg.slice(eq + 1) };
    });
    const checked = checkMailParams(params, { maxMessageSize: 0, dsn: true });
    if (!checked.ok) {
      throw new Error(`invalid ESMTP arguments "${args.join(' ')}" for the new sender: ${checked.text}`);
    }

    this.item.sender = stripBrackets(address);
    if (checked.body !== undefined) this.item.bodyType = checked.body;
    if (checked.ret !== undefined) this.item.ret = checked.ret;
    if (checked.envid !== undefined) this.item.envid = checked.envid;
  }

  quarantine(reason: string): void {
    this.item.quarantine = reason;
  }

  /** Adds one 'b' chunk of the replacement body; the first chunk starts a new body. */
  appendBody(chunk: Buffer): void {
    // A crash before the end of message leaves the .milter file, and queue recovery removes it (recovery.ts).
    this.pendingBody ??= { path: `${this.dataPath}.milter`, fd: fs.openSync(`${this.dataPath}.milter`, 'w', 0o600), size: 0, cr: false };
    const out = crlfChunk(chunk, this.pendingBody);
    let offset = 0;
    while (offset < out.length) offset += fs.writeSync(this.pendingBody.fd, out, offset, out.length - offset);
    this.pendingBody.size += out.length;
  }

  get hasPendingBody(): boolean {
    return this.pendingBody !== undefined;
  }

  /** Drops a replacement body that was not taken, e.g. when its filter failed. */
  discardPendingBody(): void {
    const pending = this.pendingBody;
    if (pending === undefined) return;
    this.pendingBody = undefined;
    fs.closeSync(pending.fd);
    fs.rmSync(pending.path, { force: true });
  }

  /**
   * Writes the replacement body over the data file, so the next filter and
   * the delivery see it. Lines are ended with CRLF as in every data file.
   * The caller fsyncs it per SuperSafe.
   */
  async writePendingBody(sync: boolean): Promise<void> {
    const pending = this.pendingBody;
    if (pending === undefined) return;
    this.pendingBody = undefined;
    fs.closeSync(pending.fd);
    try {
      // Copied, not renamed: the df keeps its inode, which the queue store may hold open for its fsync.
      await fs.promises.copyFile(pending.path, this.dataPath);
      if (sync) {
        const handle = await fs.promises.open(this.dataPath, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
    } finally {
      await fs.promises.rm(pending.path, { force: true });
    }
    this.item.bodySize = pending.size;
  }

  /** Stores the edited headers in the queue item. */
  finish(): void {
    this.item.headers = this.entries.map((e) => e.text);
  }
}

function stripBrackets(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1) : trimmed;
}

/**
 * Builds "Name:value" from a filter's header change. Filters fold values with
 * LF, and queue items keep folds as CRLF. Every line break becomes a fold: a
 * line that does not start with a space or tab gets one, and empty lines are
 * dropped, so a value can never end the header or start a field of its own.
 */
function headerField(name: string, value: string): string {
  const [first, ...rest] = value.split(/\r\n|\r|\n/);
  const folds = rest.filter((line) => line.trim() !== '').map((line) => (/^[ \t]/.test(line) ? line : ` ${line}`));
  return [`${name}:${first}`, ...folds].join('\r\n');
}

/** Tests a header name: printable characters other than the colon, at least one (RFC 5322 section 2.2). */
export function isHeaderName(name: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+$/.test(name);
}

interface PendingBody {
  path: string;
  fd: number;
  /** Bytes written so far, line ends already CRLF. */
  size: number;
  /** The last chunk ended with a CR, already written as CRLF: an LF that starts the next chunk belongs to it. */
  cr: boolean;
}

/** Turns bare LF and bare CR into CRLF across chunk edges. */
function crlfChunk(chunk: Buffer, state: PendingBody): Buffer {
  let text = chunk.toString('latin1');
  if (text === '') return chunk;
  if (state.cr && text.startsWith('\n')) text = text.slice(1);
  state.cr = text.endsWith('\r');
  return Buffer.from(text.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}
