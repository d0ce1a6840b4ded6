// Reads SMTP replies (RFC 5321 section 4.2) from a socket and hands them, in
// order, to a queue of waiting handlers. Pipelined commands (RFC 2920) register
// one handler each and their replies arrive in the order the commands were sent.

import type * as net from 'node:net';

import type { Reply } from '../smtp/reply';

/** Replies longer than this are a protocol error; RFC 5321 allows 512 octets. */
const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 100;

export type ClientErrorKind = 'timeout' | 'closed' | 'protocol';

export class SmtpClientError extends Error {
  override readonly name = 'SmtpClientError';

  constructor(
    readonly kind: ClientErrorKind,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Parses one reply line into code, separator and text. Returns undefined when
 * the line is not "NNN", "NNN text" or "NNN-text".
 */
export function parseReplyLine(line: string): { code: number; last: boolean; text: string } | undefined {
  const m = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/.exec(line);
  if (!m) return undefined;
  // The text goes to the log, the queue file, mailq and bounces: a next hop's
  // control bytes (ESC sequences, NUL) become '?', as posthorn's own replies show them.
  const text = (m[3] ?? '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?');
  return { code: Number(m[1]), last: m[2] !== '-', text };
}

/**
 * Splits an RFC 3463 enhanced status code off the reply lines when the first
 * line starts with one whose class matches the basic code.
 */
export function splitEnhanced(code: number, texts: string[]): Reply {
  const re = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;
  const m = re.exec(texts[0] ?? '');
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return { code, lines: texts };
  const enhanced = `${m[1]}.${m[2]}.${m[3]}`;
  const lines = texts.map((t) => (t.startsWith(enhanced) ? t.slice(enhanced.length).trimStart() : t));
  return { code, enhanced, lines };
}

export class ReplyReader {
  private buffered = '';
  private partial: { code: number; texts: string[] } | undefined;
  private readonly ready: Reply[] = [];
  private readonly waiters: Waiter[] = [];
  private failure: Error | undefined;

  constructor(
    private readonly socket: net.Socket,
    /**
     * Replies owed: the greeting on a new connection, then one per command
     * sent (commandsSent). A reply beyond them is a protocol error, so a next
     * hop cannot fill memory with replies to no command.
     */
    private owed = 1,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => this.onData(text));
    socket.on('error', (err) => this.fail(new SmtpClientError('closed', err.message)));
    socket.on('close', () => this.fail(new SmtpClientError('closed', 'connection closed')));
  }

  /** Whether bytes arrived beyond the replies already taken, e.g. data a server sent after its 220 to STARTTLS. */
  hasPendingInput(): boolean {
    return this.buffered.length > 0 || this.ready.length > 0;
  }

  /** Counts `n` more replies as owed, once their commands (or the final dot) are sent. */
  commandsSent(n: number): void {
    this.owed += n;
  }

  /** Waits for the next reply; rejects after `timeoutMs` with a timeout error. */
  next(timeoutMs: number, during: string): Promise<Reply> {
    const queued = this.ready.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);

    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SmtpClientError('timeout', `timeout waiting for input during ${during}`));
        this.socket.destroy();
      }, timeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  private onData(text: string): void {
    this.buffered += text;
    for (;;) {
      const lf = this.buffered.indexOf('\n');
      if (lf < 0) break;
      const line = this.buffered.slice(0, lf).replace(/\r$/, '');
      this.buffered = this.buffered.slice(lf + 1);
      this.onLine(line);
      if (this.failure) return;
    }
    if (this.buffered.length > MAX_REPLY_LINE) this.protocolError('reply line too long');
  }

  private onLine(line: string): void {
    const parsed = parseReplyLine(line);
    if (!parsed || line.length > MAX_REPLY_LINE) return this.protocolError(`malformed reply: ${line.slice(0, 80)}`);
    if (this.partial && this.partial.code !== parsed.code) {
      return this.protocolError(`reply code changed inside a multi-line reply: ${line.slice(0, 80)}`);
    }
    const partial = this.partial ?? { code: parsed.code, texts: [] };
    partial.texts.push(parsed.text);
    if (partial.texts.length > MAX_REPLY_LINES) return this.protocolError('too many reply lines');
    if (!parsed.last) {
      this.partial = partial;
      return;
    }
    this.partial = undefined;
    this.deliver(splitEnhanced(partial.code, partial.texts));
  }

  private deliver(reply: Reply): void {
    if (this.owed === 0) return this.protocolError(`reply without a command: ${reply.code}`);
    this.owed -= 1;
    const waiter = this.waiters.shift();
    if (!waiter) {
      this.ready.push(reply);
      return;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
  }

  private protocolError(message: string): void {
    this.fail(new SmtpClientError('protocol', message));
    this.socket.destroy();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
