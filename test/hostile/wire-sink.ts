// An SMTP sink that keeps the DATA bytes exactly as they came over the wire,
// still dot-stuffed and with the final ".\r\n", so a test can check the
// stuffing itself and not only the unstuffed message. The reply after the
// final dot is chosen per message by the test: a status line, or 'hold' to
// send nothing and leave the client waiting.

import * as net from 'node:net';

export interface WireMessage {
  /** RCPT TO addresses of the transaction, without angle brackets. */
  recipients: string[];
  /** Everything after the 354 reply up to and including the final ".\r\n". */
  wire: Buffer;
}

/** Returns the whole reply line sent after the final dot, or 'hold' to send none. */
export type DotReply = (message: WireMessage) => string;

export interface WireSink {
  port: number;
  messages: WireMessage[];
  close(): Promise<void>;
}

const END_OF_DATA = Buffer.from('\r\n.\r\n');
const EHLO_REPLY = '250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n';

class WireSession {
  private buffered = Buffer.alloc(0);
  private inData = false;
  private recipients: string[] = [];

  constructor(
    private readonly socket: net.Socket,
    private readonly sink: WireSink,
    private readonly dotReply: DotReply,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.write('220 sink.test ESMTP\r\n');
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (this.inData) {
        if (!this.takeData()) return;
        continue;
      }
      const newline = this.buffered.indexOf('\r\n');
      if (newline < 0) return;
      const line = this.buffered.subarray(0, newline).toString('latin1');
      this.buffered = this.buffered.subarray(newline + 2);
      this.command(line);
    }
  }

  /** Ends the DATA phase if the final dot has arrived, and returns whether it has. */
  private takeData(): boolean {
    let end: number;
    if (this.buffered.subarray(0, 3).equals(Buffer.from('.\r\n'))) {
      end = 3;
    } else {
      const at = this.buffered.indexOf(END_OF_DATA);
      if (at < 0) return false;
      end = at + END_OF_DATA.length;
    }
    const message = { recipients: this.recipients, wire: Buffer.from(this.buffered.subarray(0, end)) };
    this.buffered = this.buffered.subarray(end);
    this.inData = false;
    this.recipients = [];
    this.sink.messages.push(message);
    const reply = this.dotReply(message);
    if (reply !== 'hold') this.socket.write(reply + '\r\n');
    return true;
  }

  private command(line: string): void {
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO') {
      this.socket.write(EHLO_REPLY);
    } else if (verb === 'RCPT') {
      this.recipients.push(/<([^>]*)>/.exec(line)?.[1] ?? line);
      this.socket.write('250 2.1.5 ok\r\n');
    } else if (verb === 'DATA') {
      this.inData = true;
      this.socket.write('354 go ahead\r\n');
    } else if (verb === 'QUIT') {
      this.socket.end('221 2.0.0 bye\r\n');
    } else if (verb === 'MAIL' || verb === 'RSET' || verb === 'NOOP' || verb === 'HELO') {
      this.socket.write('250 2.0.0 ok\r\n');
    } else {
      this.socket.write('500 5.5.1 unknown command\r\n');
    }
  }
}

/** Starts a sink on 127.0.0.1 on a free port. */
export async function startWireSink(dotReply: DotReply): Promise<WireSink> {
  const sockets = new Set<net.Socket>();
  const sink: WireSink = { port: 0, messages: [], close: async () => undefined };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    new WireSession(socket, sink, dotReply);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.port = (server.address() as net.AddressInfo).port;
  sink.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return sink;
}

/** Dot-stuffs `body` as RFC 5321 section 4.5.2 requires: a "." before every line that starts with ".". */
export function stuff(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  if (body[0] === 0x2e) parts.push(Buffer.from('.'));
  for (let at = body.indexOf('\n.'); at >= 0; at = body.indexOf('\n.', at + 2)) {
    parts.push(body.subarray(start, at + 1), Buffer.from('.'));
    start = at + 1;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}
