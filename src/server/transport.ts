// Session transports: a TCP socket for the daemon, stdin/stdout for -bs.

import type * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { SessionTransport } from './context';
import { acceptTls, type ServerHandshakeOptions } from '../tls/server';
import type { TlsInfo } from '../tls/peer';

/** How long a closed session waits for the client's own close before the socket is destroyed. */
const CLOSE_GRACE_MS = 10_000;

export function socketTransport(socket: net.Socket): SessionTransport {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  // After STARTTLS every call goes to the secure socket that wraps `socket`.
  let active: net.Socket = socket;
  const dataHandlers: Array<(chunk: Buffer) => void> = [];
  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    // The server allows half-open sockets, so the socket ends only when the
    // client's FIN is read. Bytes the session left unread (a client refused
    // while paused, commands after QUIT) are read and dropped to get there.
    for (const handler of dataHandlers) active.removeListener('data', handler);
    active.end();
    active.resume();
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
  return {
    write: (text) => active.write(text),
    onData: (handler) => {
      dataHandlers.push(handler);
      active.on('data', handler);
    },
    onEnd: (handler) => {
      // 'end' is a half-close (the client may still read replies); 'close' an abrupt end.
      socket.once('end', handler);
      socket.once('close', handler);
      // A client that sent nothing and half-closed while the daemon waited
      // before the session (throttle, shared counters) had its 'end' already.
      if (socket.readableEnded) process.nextTick(handler);
    },
    pause: () => active.pause(),
    resume: () => active.resume(),
    close,
    drain: () => waitForDrain(active),
    async startTls(options: ServerHandshakeOptions): Promise<TlsInfo> {
      for (const handler of dataHandlers) socket.removeListener('data', handler);
      const { socket: secure, info } = await acceptTls(socket, options);
      secure.on('error', () => secure.destroy());
      secure.pause();
      for (const handler of dataHandlers) secure.on('data', handler);
      active = secure;
      return info;
    },
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
    drain: () => waitForDrain(output),
    remoteAddress: '127.0.0.1',
    remotePort: 0,
    localAddress: '127.0.0.1',
    localPort: 0,
  };
}

/** Resolves when a stream's write buffer has drained, or when it closes. */
function waitForDrain(stream: Writable): Promise<void> {
  if (!stream.writableNeedDrain || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
