// A small SMTP server for the STARTTLS client tests: it offers STARTTLS with a
// given certificate, or answers STARTTLS with a scripted reply, or breaks the
// handshake by sending bytes that are not TLS. It records each message and
// whether it arrived inside TLS.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { waitFor } from '../helpers/process';

export interface TlsSinkOptions {
  host: string;
  port: number;
  /** Server certificate and key; without them STARTTLS is not offered. */
  cert?: string;
  key?: string;
  /** 'handshake' runs TLS; 'garbage' answers 220 and then sends plain text; a string is the reply to STARTTLS. */
  starttls?: 'handshake' | 'garbage' | string;
}

export interface TlsSinkMessage {
  to: string[];
  data: string;
  tls: boolean;
}

export interface TlsSink {
  messages: TlsSinkMessage[];
  /** Every command line received, in order, prefixed with "tls " inside TLS. */
  commands: string[];
  waitForMessages(n: number, timeoutMs?: number): Promise<TlsSinkMessage[]>;
  close(): Promise<void>;
}

export async function startTlsSink(opts: TlsSinkOptions): Promise<TlsSink> {
  const sockets = new Set<net.Socket>();
  const context = opts.cert && opts.key
    ? tls.createSecureContext({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) })
    : undefined;
  const sink: TlsSink = {
    messages: [],
    commands: [],
    waitForMessages: (n, timeoutMs = 20_000) =>
      waitFor(`${n} message(s) at the TLS sink`, () => (sink.messages.length >= n ? sink.messages : undefined), timeoutMs),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const serve = (socket: net.Socket, secure: boolean): void => {
    let buffered = '';
    let inData = false;
    let to: string[] = [];
    let data = '';
    const write = (text: string): void => {
      if (!socket.destroyed) socket.write(text + '\r\n');
    };
    const onLine = (line: string): boolean => {
      if (inData) {
        if (line === '.') {
          inData = false;
          sink.messages.push({ to, data, tls: secure });
          to = [];
          write('250 2.0.0 accepted');
        } else {
          data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
        }
        return true;
      }
      sink.commands.push((secure ? 'tls ' : '') + line);
      const verb = line.split(' ')[0].toUpperCase();
      if (verb === 'EHLO') {
        const offer = context && !secure && opts.starttls !== undefined ? ['250-STARTTLS'] : [];
        write(['250-tlssink.test', ...offer, '250 8BITMIME'].join('\r\n'));
      } else if (verb === 'STARTTLS') {
        if (opts.starttls !== 'handshake' && opts.starttls !== 'garbage') {
          write(opts.starttls ?? '502 5.5.1 not here');
          return true;
        }
        write('220 2.0.0 go ahead');
        socket.removeAllListeners('data');
        if (opts.starttls === 'garbage') {
          socket.end('this is not a TLS record\r\n');
          return false;
        }
        const upgraded = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
        upgraded.on('error', () => upgraded.destroy());
        serve(upgraded, true);
        return false;
      } else if (verb === 'MAIL') {
        to = [];
        write('250 2.1.0 ok');
      } else if (verb === 'RCPT') {
        to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
        write('250 2.1.5 ok');
      } else if (verb === 'DATA') {
        inData = true;
        data = '';
        write('354 go on');
      } else if (verb === 'QUIT') {
        write('221 2.0.0 bye');
        socket.end();
      } else {
        write('250 2.0.0 ok');
      }
      return true;
    };
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let lf: number;
      while ((lf = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, lf).replace(/\r$/, '');
        buffered = buffered.slice(lf + 1);
        if (!onLine(line)) return;
      }
    });
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write('220 tlssink.test ESMTP\r\n');
    serve(socket, false);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return sink;
}
