// Session transports: a TCP socket for the daemon, stdin/stdout for -bs.

import type * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { SessionTransport } from './context';

export function socketTransport(socket: net.Socket): SessionTransport {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  return {
    write: (text) => socket.write(text),
    onData: (handler) => socket.on('data', handler),
    onEnd: (handler) => socket.once('close', handler),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.end(),
    drain: () =>
      socket.writableNeedDrain ? new Promise((resolve) => socket.once('drain', () => resolve())) : Promise.resolve(),
    remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
    remotePort: socket.remotePort ?? 0,
    localAddress: normalizeAddress(socket.localAddress ?? ''),
    localPort: socket.localPort ?? 0,
  };
}

/** Strips the "::ffff:" prefix of IPv4-mapped IPv6 addresses. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** SMTP over a pair of streams, e.g. process.stdin and process.stdout for -bs. */
export function streamTransport(input: Readable, output: Writable): SessionTransport {
  let closed = false;
  return {
    write: (text) => output.write(text),
    onData: (handler) => input.on('data', handler),
    onEnd: (handler) => input.once('end', handler),
    pause: () => input.pause(),
    resume: () => input.resume(),
    close: () => {
      if (closed) return;
      closed = true;
      input.pause();
      input.destroy();
    },
    drain: () =>
      output.writableNeedDrain ? new Promise((resolve) => output.once('drain', () => resolve())) : Promise.resolve(),
    remoteAddress: '127.0.0.1',
    remotePort: 0,
    localAddress: '127.0.0.1',
    localPort: 0,
  };
}
