// The -X transcript: every line of every SMTP session appended to one file, in
// sendmail's layout "<nnnnn> <<< line" for what the client sent, "<nnnnn> >>>
// line" for the replies, and "<nnnnn> === CONNECT <addr>" when a session opens.
// sendmail writes the pid of the child that runs the session; Posthorn runs all
// sessions in one process, so the number is a session counter that separates
// the interleaved sessions.
//
// Outbound SMTP and LMTP sessions go to the same file the way sendmail's
// delivering child writes them: "<nnnnn> === CONNECT <host>", then ">>> line"
// for what Posthorn sent (commands and the dot-stuffed message) and "<<< line"
// for the server's replies.

import * as fs from 'node:fs';
import type { SessionTransport } from '../server/context';

export class TranscriptFile {
  private sessions = 0;

  private constructor(private readonly fd: number) {}

  /** Opens `path` for appending; throws with the errno code on failure. */
  static open(path: string): TranscriptFile {
    return new TranscriptFile(fs.openSync(path, 'a', 0o600));
  }

  /** Returns a transport that copies every line of `transport` into the file. */
  wrap(transport: SessionTransport): SessionTransport {
    const tag = this.nextTag();
    this.write(`${tag} === CONNECT ${transport.remoteAddress}`);
    const incoming = new LineSplitter((line) => this.write(`${tag} <<< ${line}`));
    const outgoing = new LineSplitter((line) => this.write(`${tag} >>> ${line}`));

    return {
      ...transport,
      write: (text) => {
        outgoing.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
        return transport.write(text);
      },
      onData: (handler) =>
        transport.onData((chunk) => {
          incoming.push(chunk);
          handler(chunk);
        }),
      pause: () => transport.pause(),
      resume: () => transport.resume(),
      close: () => transport.close(),
      drain: () => transport.drain(),
      onEnd: (handler) => transport.onEnd(handler),
      startTls: transport.startTls?.bind(transport),
    };
  }

  /** Starts the record of an outbound session to `host`. */
  outbound(host: string): OutboundTranscript {
    const tag = this.nextTag();
    this.write(`${tag} === CONNECT ${host}`);
    const sent = new LineSplitter((line) => this.write(`${tag} >>> ${line}`));
    const received = new LineSplitter((line) => this.write(`${tag} <<< ${line}`));
    return { sent: (bytes) => sent.push(bytes), received: (bytes) => received.push(bytes) };
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private nextTag(): string {
    this.sessions += 1;
    return String(this.sessions).padStart(5, '0');
  }

  private write(line: string): void {
    try {
      fs.writeSync(this.fd, line + '\n');
    } catch {
      // A full disk must not break the session that is being traced.
    }
  }
}

/** What an outbound session feeds into the transcript: raw bytes each way. */
export interface OutboundTranscript {
  sent(bytes: Buffer | string): void;
  received(bytes: Buffer | string): void;
}

let current: TranscriptFile | undefined;

/** Makes `file` the -X transcript that outbound sessions of this process write to. */
export function setTranscriptFile(file: TranscriptFile | undefined): void {
  current = file;
}

/** The record of a new outbound session, or undefined without -X. */
export function outboundTranscript(host: string): OutboundTranscript | undefined {
  return current?.outbound(host);
}

/** Cuts a byte stream into lines without their CRLF or LF. */
class LineSplitter {
  private rest = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.rest + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) this.emit(line.replace(/\r$/, ''));
  }
}
