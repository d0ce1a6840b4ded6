// Building blocks for the hostile DATA stream tests: a daemon that relays
// remote.example to a sink on 127.0.0.2, a raw SMTP connection whose writes the
// test splits by hand, and message bodies full of dot lines.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { startSink, type Sink } from '../helpers/sink';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { freePortOn, sleep, waitFor } from '../helpers/process';
import { mxZone } from '../helpers/e2e-setup';

export interface RelayWorld {
  ph: Posthorn;
  sink: Sink;
  close(): Promise<void>;
}

/**
 * Starts a sink on 127.0.0.2, a DNS server with the MX of remote.example
 * pointing to it, and a posthorn daemon that delivers at once. The `extra`
 * lines go into the .mc, e.g. a MaxMessageSize.
 */
export async function startRelayWorld(extra: string[] = []): Promise<RelayWorld> {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  let ph: Posthorn;
  try {
    ph = await startPosthorn({
      mc: baseMc({ dnsPort: dns.port, mailerPort, extra }),
      // receivingId() finds the item by its df, which a message for the commit journal gets only when its body passes 64 KiB.
      args: ['-O', 'RefuseLA=0', '-O', 'QueueLA=0', '-O', 'CommitJournal=false'],
    });
  } catch (err) {
    await Promise.all([sink.close(), dns.close()]);
    throw err;
  }
  return {
    ph,
    sink,
    close: async () => {
      await ph.stop();
      await Promise.all([sink.close(), dns.close()]);
    },
  };
}

/**
 * A raw SMTP connection that collects replies (each with its lines joined by
 * "\n") and lets the test decide how the bytes are cut into writes.
 */
export class RawConnection {
  readonly socket: net.Socket;
  /** Resolves once the server or the test has closed the connection. */
  readonly closed: Promise<void>;
  private readonly replies: string[] = [];
  private waiter: (() => void) | undefined;
  private pendingLines: string[] = [];
  private buffered = '';
  private isClosed = false;

  private constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.closed = new Promise((resolve) => {
      this.socket.once('close', () => {
        this.isClosed = true;
        this.waiter?.();
        resolve();
      });
    });
  }

  /** Connects to 127.0.0.1:`port` and reads the greeting, which must be a 220. */
  static async open(port: number): Promise<RawConnection> {
    const conn = new RawConnection(port);
    const greeting = await conn.reply();
    if (!greeting.startsWith('220 ')) throw new Error(`expected a 220 greeting, got: ${greeting}`);
    return conn;
  }

  private onData(chunk: Buffer): void {
    this.buffered += chunk.toString('latin1');
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).replace(/\r$/, '');
      this.buffered = this.buffered.slice(newline + 1);
      this.pendingLines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        this.replies.push(this.pendingLines.join('\n'));
        this.pendingLines = [];
        this.waiter?.();
      }
    }
  }

  /** Returns the next reply, or '(closed)' when the connection closes first. */
  async reply(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.isClosed) return '(closed)';
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for a reply`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.replies.shift() as string;
  }

  /** Writes `data` and waits until Node has handed it to the kernel. */
  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<string> {
    await this.write(line + '\r\n');
    return this.reply();
  }

  /** Writes each part on its own, with a pause of `gapMs` between them. */
  async writeParts(parts: Array<Buffer | string>, gapMs = 5): Promise<void> {
    for (const [i, part] of parts.entries()) {
      if (i > 0) await sleep(gapMs);
      await this.write(part);
    }
  }

  /** Sends MAIL, RCPT and DATA for one recipient and returns the reply to DATA. */
  async startData(from: string, to: string): Promise<string> {
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (!mail.startsWith('250 ')) throw new Error(`MAIL FROM failed: ${mail}`);
    const rcpt = await this.command(`RCPT TO:<${to}>`);
    if (!rcpt.startsWith('250 ')) throw new Error(`RCPT TO failed: ${rcpt}`);
    return this.command('DATA');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffs a CRLF text: every line that starts with "." gets one more. */
export function dotStuff(text: string): string {
  return text.replace(/(^|\r\n)\./g, '$1..');
}

/**
 * Builds a body of about `size` bytes in CRLF lines. Every seventh line
 * starts with ".", every eleventh with "..", and every thirteenth is a lone
 * ".", so unstuffing and stuffing again both show in the delivered bytes.
 */
export function dottedBody(size: number, tag: string): string {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    let line = `${tag} line ${i} ${'x'.repeat(i % 61)}`;
    if (i % 13 === 0) line = '.';
    else if (i % 11 === 0) line = '..' + line;
    else if (i % 7 === 0) line = '.' + line;
    lines.push(line);
    length += line.length + 2;
  }
  lines.push(`${tag} last line`);
  return lines.join('\r\n') + '\r\n';
}

/** Returns a header section and `body` as one message with CRLF line ends. */
export function messageText(subject: string, body: string): string {
  return `From: alice@client.example\r\nTo: carol@remote.example\r\nSubject: ${subject}\r\n\r\n${body}`;
}

/** Queue files (df, qf, tf, ...) whose names end with queue id `id`. */
export function filesOf(ph: Posthorn, id: string): string[] {
  return ph.queueFiles().filter((name) => name.slice(2) === id);
}

/** Queue files that belong to a message: data, control and temporary files. */
export function messageFiles(ph: Posthorn): string[] {
  return ph.queueFiles().filter((name) => /^(df|qf|tf|hf|Qf|xf)/.test(name));
}

/** Waits until the queue contains no message files, so every delivery is done. */
export async function waitForEmptyQueue(ph: Posthorn, timeoutMs = 15_000): Promise<void> {
  await waitFor('an empty queue', () => messageFiles(ph).length === 0, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}: ${messageFiles(ph).join(' ')}\n--- log ---\n${ph.logs()}`);
  });
}

/**
 * Returns the queue id of the message being received, read from the name of
 * its data file. The queue must contain no other data file.
 */
export function receivingId(ph: Posthorn): string {
  const dataFiles = ph.queueFiles().filter((name) => name.startsWith('df'));
  if (dataFiles.length !== 1) throw new Error(`expected one data file, found: ${dataFiles.join(' ')}`);
  return dataFiles[0].slice(2);
}

/** Returns the size in bytes of data file df<id>, or -1 when there is none. */
export function dataFileSize(ph: Posthorn, id: string): number {
  try {
    return fs.statSync(path.join(ph.queueDir, `df${id}`)).size;
  } catch {
    return -1;
  }
}
