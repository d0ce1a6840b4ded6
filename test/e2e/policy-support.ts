// Helpers for the access map and connection policy scenarios: an SMTP
// conversation that may write before the greeting, an access map compiled
// with the real makemap program, and a captured TLS ClientHello.

import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/peers';

export interface ConverseOptions {
  host?: string;
  localAddress?: string;
  /** Bytes written right after connecting, before any greeting. */
  early?: Array<string | Buffer>;
  /** How many replies the early bytes cause after the greeting (default: one per early entry). */
  earlyReplies?: number;
  timeoutMs?: number;
}

/**
 * Connects, optionally writes `early` at once, then sends one `script` line
 * after each reply once the greeting and the early replies are in. Returns
 * every reply (lines joined by "\n"); the list ends early when the server closes.
 */
export function converse(port: number, script: string[], opts: ConverseOptions = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress });
    const early = opts.early ?? [];
    const earlyReplies = opts.earlyReplies ?? early.length;
    const replies: string[] = [];
    let pending: string[] = [];
    let buffered = '';
    let done = false;

    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`conversation timed out; replies so far:\n${replies.join('\n')}`)),
      opts.timeoutMs ?? 20_000,
    );

    socket.once('connect', () => {
      for (const chunk of early) socket.write(typeof chunk === 'string' ? `${chunk}\r\n` : chunk);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).replace(/\r$/, '');
        buffered = buffered.slice(newline + 1);
        pending.push(line);
        if (!/^\d{3}(?: |$)/.test(line)) continue;
        replies.push(pending.join('\n'));
        pending = [];
        const next = replies.length - 1 - earlyReplies;
        if (next < 0) continue;
        if (next >= script.length) return finish();
        socket.write(`${script[next]}\r\n`);
      }
    });
    socket.on('error', (err) => (replies.length > 0 ? finish() : finish(err)));
    socket.on('close', () => finish());
  });
}

/** Writes `text` as the map source at `file` and compiles it with bin/makemap. */
export function makemap(file: string, text: string, type = 'hash'): { status: number | null; stderr: string } {
  fs.writeFileSync(file, text);
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'makemap'), type, file], { input: text });
  return { status: r.status, stderr: r.stderr.toString() };
}

/** Captures the first bytes a TLS client sends (its ClientHello), from a local listener. */
export async function captureClientHello(): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  const hello = new Promise<Buffer>((resolve) =>
    server.once('connection', (socket) =>
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
      }),
    ),
  );
  const client = tls.connect({ host: '127.0.0.1', port, servername: 'mx.posthorn.test', rejectUnauthorized: false });
  client.on('error', () => undefined);
  const bytes = await hello;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return bytes;
}
