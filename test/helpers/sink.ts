// A small SMTP server for tests that records every message it accepts. Replies
// can be scripted per command, so a test can make a next hop greet with 421,
// reject one recipient with 550 or refuse EHLO like an old RFC 821 server.

import * as net from 'node:net';

export type SinkStage = 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'dot' | 'rset';

export interface SinkMessage {
  from: string;
  to: string[];
  /** The message bytes after dot-unstuffing, without the final ".". */
  data: Buffer;
  helo: string;
}

export interface SinkOptions {
  host?: string;
  port?: number;
  /** Whole reply lines (CRLF added) replacing the default reply of a stage. */
  replies?: Partial<Record<SinkStage, string>>;
  rcptReply?: (address: string) => string;
  /** Replies 500 to EHLO so that clients fall back to HELO. */
  noEsmtp?: boolean;
  /** ESMTP keywords to offer after EHLO; default PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES. */
  extensions?: string[];
  /** Speaks LMTP (RFC 2033): LHLO and one reply per recipient after the dot. */
  lmtp?: boolean;
  /** Delay in ms before the reply to the final dot, per message (a slow next hop). The message is recorded at once. */
  dotDelayMs?: (data: Buffer) => number;
  /** The reply to the final dot, by message, in place of replies.dot. */
  dotReply?: (data: Buffer) => string;
}

export interface Sink {
  port: number;
  host: string;
  messages: SinkMessage[];
  /** Every command line received, in order, across all sessions. */
  commands: string[];
  /** Number of TCP packets (data events) in which several commands arrived. */
  pipelinedBatches: number;
  waitForMessages(n: number, timeoutMs: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

const DEFAULT_EXTENSIONS = ['PIPELINING', 'SIZE 10485760', '8BITMIME', 'ENHANCEDSTATUSCODES'];

function angleAddress(arg: string): string {
  const m = /<([^>]*)>/.exec(arg);
  return m ? m[1] : arg.trim();
}

interface SessionState {
  helo: string;
  from?: string;
  to: string[];
  inData: boolean;
  data: Buffer[];
}

class SinkSession {
  private buffered = Buffer.alloc(0);
  private readonly state: SessionState = { helo: '', to: [], inData: false, data: [] };

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: SinkOptions,
    private readonly sink: Sink,
    private readonly notify: () => void,
  ) {
    const greeting = opts.replies?.greeting ?? '220 sink.test ESMTP ready';
    socket.write(greeting + '\r\n');
    if (/^[45]/.test(greeting)) {
      socket.end();
      return;
    }
    socket.on('data', (chunk) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    let commandsInChunk = 0;
    for (;;) {
      const lf = this.buffered.indexOf('\n');
      if (lf < 0) break;
      const line = this.buffered.subarray(0, lf + 1);
      this.buffered = this.buffered.subarray(lf + 1);
      if (this.state.inData) {
        this.onDataLine(line);
      } else {
        commandsInChunk++;
        this.onCommand(line.toString('latin1').replace(/\r?\n$/, ''));
      }
    }
    if (commandsInChunk > 1) this.sink.pipelinedBatches++;
  }

  private reply(stage: SinkStage | undefined, fallback: string): void {
    const text = (stage && this.opts.replies?.[stage]) ?? fallback;
    if (!this.socket.destroyed) this.socket.write(text + '\r\n');
  }

  private onCommand(line: string): void {
    this.sink.commands.push(line);
    const verb = line.split(' ')[0].toUpperCase();
    const arg = line.slice(verb.length).trim();
    switch (verb) {
      case 'EHLO':
      case 'LHLO':
        return this.onEhlo(verb, arg);
      case 'HELO':
        this.state.helo = arg;
        return this.reply(undefined, '250 sink.test');
      case 'MAIL':
        return this.onMail(arg);
      case 'RCPT':
        return this.onRcpt(arg);
      case 'DATA':
        return this.onDataCommand();
      case 'RSET':
        this.state.from = undefined;
        this.state.to = [];
        return this.reply('rset', '250 2.0.0 Reset state');
      case 'QUIT':
        this.reply(undefined, '221 2.0.0 sink.test closing connection');
        this.socket.end();
        return;
      default:
        return this.reply(undefined, '500 5.5.1 Command unrecognized');
    }
  }

  private onEhlo(verb: string, arg: string): void {
    if (this.opts.noEsmtp || (this.opts.lmtp && verb !== 'LHLO')) {
      return this.reply(undefined, '500 5.5.1 Command unrecognized');
    }
    if (this.opts.replies?.ehlo) return this.reply('ehlo', '');
    this.state.helo = arg;
    const lines = ['sink.test', ...(this.opts.extensions ?? DEFAULT_EXTENSIONS)];
    const text = lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n');
    this.reply(undefined, text);
  }

  private onMail(arg: string): void {
    const reply = this.opts.replies?.mail ?? '250 2.1.0 Sender ok';
    if (reply.startsWith('2')) {
      this.state.from = angleAddress(arg.replace(/^FROM:/i, ''));
      this.state.to = [];
    }
    this.reply(undefined, reply);
  }

  private onRcpt(arg: string): void {
    const address = angleAddress(arg.replace(/^TO:/i, ''));
    const reply = this.opts.rcptReply?.(address) ?? this.opts.replies?.rcpt ?? '250 2.1.5 Recipient ok';
    if (reply.startsWith('2') && this.state.from !== undefined) this.state.to.push(address);
    this.reply(undefined, reply);
  }

  private onDataCommand(): void {
    if (this.state.from === undefined || this.state.to.length === 0) {
      return this.reply(undefined, '554 5.5.1 No valid recipients');
    }
    const reply = this.opts.replies?.data ?? '354 Enter mail, end with "." on a line by itself';
    if (reply.startsWith('354')) {
      this.state.inData = true;
      this.state.data = [];
    }
    this.reply(undefined, reply);
  }

  private onDataLine(line: Buffer): void {
    if (line.toString('latin1') === '.\r\n') return this.onDot();
    const unstuffed = line[0] === 0x2e ? line.subarray(1) : line;
    this.state.data.push(unstuffed);
  }

  private onDot(): void {
    this.state.inData = false;
    const data = Buffer.concat(this.state.data);
    const dot = this.opts.dotReply?.(data) ?? this.opts.replies?.dot ?? '250 2.0.0 Message accepted for delivery';
    if (dot.startsWith('2')) {
      this.sink.messages.push({
        from: this.state.from ?? '',
        to: [...this.state.to],
        data,
        helo: this.state.helo,
      });
      this.notify();
    }
    const count = this.opts.lmtp ? this.state.to.length : 1;
    const answer = (): void => {
      for (let i = 0; i < count; i++) this.reply(undefined, dot);
    };
    const delay = this.opts.dotDelayMs?.(data) ?? 0;
    if (delay > 0) setTimeout(answer, delay);
    else answer();
    this.state.from = undefined;
    this.state.to = [];
  }
}

/** Starts a sink on `host` (default 127.0.0.1) and `port` (default: a free one). */
export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const host = opts.host ?? '127.0.0.1';
  const waiters: Array<() => boolean> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer();

  const sink: Sink = {
    port: 0,
    host,
    messages: [],
    commands: [],
    pipelinedBatches: 0,
    waitForMessages: (n, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (sink.messages.length < n) return false;
          clearTimeout(timer);
          resolve(sink.messages.slice(0, n));
          return true;
        };
        const timer = setTimeout(
          () => reject(new Error(`sink got ${sink.messages.length} of ${n} messages`)),
          timeoutMs,
        );
        if (!check()) waiters.push(check);
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const notify = (): void => {
    for (const w of [...waiters]) if (w()) waiters.splice(waiters.indexOf(w), 1);
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    new SinkSession(socket, opts, sink, notify);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  sink.port = (server.address() as net.AddressInfo).port;
  return sink;
}
