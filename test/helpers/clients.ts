// Real SMTP clients for the end-to-end tests: Python's smtplib, swaks, nodemailer,
// a raw socket that sends a script of lines (optionally some before the
// greeting) and collects every reply, and a client driven one command at a time.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as nodemailer from 'nodemailer';
import { findPeer } from './peers';
import { runCommand, type CommandResult } from './process';

/** One reply as smtplib returns it: the code and the text lines joined by "\n". */
export interface CodeText {
  code: number;
  text: string;
}

export interface SmtplibOptions {
  port: number;
  host?: string;
  /** Local address to bind, e.g. 127.0.0.9 to appear as another client. */
  sourceAddress?: string;
  /** EHLO argument (default client.posthorn.test). */
  ehlo?: string;
  from: string;
  to: string[];
  /** The message; smtplib sends it with CRLF line ends and dot-stuffing. */
  data: string;
  /** Path of python3 (default: found on PATH). */
  python?: string;
}

export interface SmtplibResult {
  greeting?: CodeText;
  ehlo?: CodeText;
  mail?: CodeText;
  /** One reply per recipient, in order. */
  rcpt: CodeText[];
  /** Absent when no recipient was accepted, as DATA is then not sent. */
  data?: CodeText;
  quit?: CodeText;
  /** Exception text when the session broke off. */
  error?: string;
}

// Drives each command with smtplib's low-level calls so that every reply code is
// kept, which SMTP.sendmail() would hide behind exceptions.
const SMTPLIB_SCRIPT = `
import json, smtplib, sys

opts = json.load(sys.stdin)
out = {"rcpt": []}

def pair(reply):
    code, text = reply
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return {"code": code, "text": text}

try:
    source = (opts["source"], 0) if opts.get("source") else None
    client = smtplib.SMTP(timeout=30, source_address=source)
    out["greeting"] = pair(client.connect(opts["host"], opts["port"]))
    out["ehlo"] = pair(client.ehlo(opts["ehlo"]))
    out["mail"] = pair(client.mail(opts["from"]))
    for rcpt in opts["to"]:
        out["rcpt"].append(pair(client.rcpt(rcpt)))
    if any(r["code"] // 100 == 2 for r in out["rcpt"]):
        out["data"] = pair(client.data(opts["data"].encode("utf-8")))
    out["quit"] = pair(client.quit())
except Exception as err:
    out["error"] = "%s: %s" % (type(err).__name__, err)

print(json.dumps(out))
`;

/** Sends one message with Python's smtplib and returns every reply. */
export async function smtplibSend(opts: SmtplibOptions): Promise<SmtplibResult> {
  const python = opts.python ?? findPeer('python3') ?? 'python3';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-smtplib-'));
  const script = path.join(dir, 'send.py');
  fs.writeFileSync(script, SMTPLIB_SCRIPT);
  try {
    const input = JSON.stringify({
      host: opts.host ?? '127.0.0.1',
      port: opts.port,
      source: opts.sourceAddress,
      ehlo: opts.ehlo ?? 'client.posthorn.test',
      from: opts.from,
      to: opts.to,
      data: opts.data,
    });
    const result = await runCommand(python, [script], { input, timeoutMs: 60_000 });
    if (result.code !== 0) throw new Error(`smtplib script failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as SmtplibResult;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs swaks with the given arguments and returns its transcript in stdout. */
export function swaks(args: string[], opts: { bin?: string; input?: string } = {}): Promise<CommandResult> {
  const bin = opts.bin ?? findPeer('swaks') ?? 'swaks';
  return runCommand(bin, args, { input: opts.input, timeoutMs: 60_000 });
}

export interface NodemailerOptions {
  port: number;
  host?: string;
  localAddress?: string;
  from: string;
  to: string[];
  cc?: string[];
  subject: string;
  text: string;
}

/** Sends one message through nodemailer's SMTP transport, without STARTTLS. */
export async function nodemailerSend(opts: NodemailerOptions): Promise<{
  accepted: string[];
  rejected: string[];
  response: string;
  messageId: string;
}> {
  const transport = nodemailer.createTransport({
    host: opts.host ?? '127.0.0.1',
    port: opts.port,
    secure: false,
    ignoreTLS: true,
    name: 'nodemailer.posthorn.test',
    localAddress: opts.localAddress,
    connectionTimeout: 30_000,
  });
  try {
    const info = await transport.sendMail({
      from: opts.from,
      to: opts.to,
      cc: opts.cc,
      subject: opts.subject,
      text: opts.text,
    });
    return {
      accepted: info.accepted.map(String),
      rejected: info.rejected.map(String),
      response: info.response,
      messageId: info.messageId,
    };
  } finally {
    transport.close();
  }
}

export interface RawSmtpOptions {
  host?: string;
  localAddress?: string;
  /**
   * Written right after connecting, before the greeting: a string entry gets
   * CRLF appended like a script entry, a Buffer is written as it is.
   */
  early?: Array<string | Buffer>;
  /** How many replies the early writes cause after the greeting (default: one per entry). */
  earlyReplies?: number;
  /** Bound on the whole conversation (default 30000 ms). */
  timeoutMs?: number;
}

function withCrlf(entry: string): string {
  return entry.endsWith('\r\n') ? entry : entry + '\r\n';
}

/**
 * Connects, writes the `early` entries at once, and reads the greeting and the
 * replies to the early entries. Then sends each script entry and reads one reply
 * after it. An entry gets CRLF appended unless it already ends with "\r\n", so a
 * message body can be sent as one entry ending in "\r\n.\r\n". Returns the
 * greeting and every reply, each with its lines joined by "\n". When the server
 * closes the connection early, the list is shorter than the script.
 */
export function rawSmtp(port: number, script: string[], opts: RawSmtpOptions = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress });
    const early = opts.early ?? [];
    const earlyReplies = opts.earlyReplies ?? early.length;
    const replies: string[] = [];
    let pendingLines: string[] = [];
    let buffered = '';
    let finished = false;

    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`rawSmtp timed out; replies so far:\n${replies.join('\n')}`)),
      opts.timeoutMs ?? 30_000,
    );

    // Sends the script entry that follows the latest reply, once the greeting
    // and the replies to the early entries are in.
    const sendNext = (): void => {
      const step = replies.length - 1 - earlyReplies;
      if (step < 0) return;
      if (step >= script.length) return finish();
      socket.write(withCrlf(script[step]));
    };

    socket.once('connect', () => {
      for (const entry of early) socket.write(typeof entry === 'string' ? withCrlf(entry) : entry);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).replace(/\r$/, '');
        buffered = buffered.slice(newline + 1);
        pendingLines.push(line);
        // The last line of a reply has a space (or nothing) after the code.
        if (/^\d{3}(?: |$)/.test(line)) {
          replies.push(pendingLines.join('\n'));
          pendingLines = [];
          sendNext();
        }
      }
    });
    socket.on('error', (err) => {
      // A reset after the server's final reply ends the conversation normally.
      if (replies.length > 0) finish();
      else finish(err);
    });
    socket.on('close', () => finish());
  });
}

/** A client connection driven one command at a time, reading one reply per command. Every wait is bounded. */
export class StepClient {
  private buffered = '';
  private readonly waiters: Array<() => void> = [];
  private closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('latin1');
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const wake of this.waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<StepClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new StepClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Reads the next complete reply, with its lines joined by "\n", or '' when the server closed first. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^((?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n)/.exec(this.buffered);
      if (match) {
        this.buffered = this.buffered.slice(match[1].length);
        return match[1].replace(/\r/g, '').trimEnd();
      }
      if (this.closed) return '';
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for a reply, buffered: ${JSON.stringify(this.buffered)}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Writes `text` as it is, without adding CRLF. */
  send(text: string): void {
    this.socket.write(text);
  }

  /** Sends one command line with CRLF appended and returns its reply. */
  command(line: string): Promise<string> {
    this.send(line + '\r\n');
    return this.reply();
  }
}
