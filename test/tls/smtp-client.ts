// A scripted SMTP client for the STARTTLS server tests: one command at a time,
// raw writes for pipelining, and the TLS upgrade with or without a client
// certificate.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

export class TestSmtpClient {
  private socket: net.Socket;
  private buffered = '';
  private lines: string[] = [];
  private waiter?: () => void;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  static connect(port: number, localAddress?: string): Promise<TestSmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(new TestSmtpClient(socket)));
      socket.once('error', reject);
    });
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString('latin1');
      let lf: number;
      while ((lf = this.buffered.indexOf('\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, lf).replace(/\r$/, ''));
        this.buffered = this.buffered.slice(lf + 1);
      }
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Reads one whole reply, lines joined by "\n"; '' when the server closed the connection first. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.lines.findIndex((l) => /^\d{3}(?: |$)/.test(l));
      if (end >= 0) return this.lines.splice(0, end + 1).join('\n');
      if (this.closed) return '';
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; lines so far: ${this.lines.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  write(text: string): void {
    this.socket.write(text);
  }

  async command(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Runs the TLS handshake after a 220 to STARTTLS. */
  startTls(opts: { cert?: string; key?: string } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.removeAllListeners('data');
      this.socket.removeAllListeners('close');
      const secure = tls.connect({
        socket: this.socket,
        rejectUnauthorized: false,
        cert: opts.cert ? fs.readFileSync(opts.cert) : undefined,
        key: opts.key ? fs.readFileSync(opts.key) : undefined,
      });
      secure.once('secureConnect', () => {
        this.socket = secure;
        this.attach(secure);
        resolve();
      });
      secure.once('error', reject);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
