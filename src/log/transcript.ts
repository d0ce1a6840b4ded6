// The -X transcript: every line of every SMTP session appended to one file, in
// sendmail's layout "<nnnnn> <<< line" for what the client sent, "<nnnnn> >>>
// line" for the replies, and "<nnnnn> === CONNECT <addr>" when a session opens.
// sendmail writes the pid of the child that runs the session; Posthorn runs all
// sessions in one process, so the number is a session counter that separates
// the interleaved sessions.

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
    this.sessions += 1;
    const tag = String(this.sessions).padStart(5, '0');
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

  close(): void {
    fs.closeSync(this.fd);
  }

  private write(line: string): void {
    try {
      fs.writeSync(this.fd, line + '\n');
    } catch {
      // A full disk must not break the session that is being traced.
    }
  }
}

/** Cuts a byte stream into lines without their CRLF or LF. */
class LineSplitter {
  private rest = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.rest + chunk.toString('latin1');
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) this.emit(line.replace(/\r$/, ''));
  }
}
