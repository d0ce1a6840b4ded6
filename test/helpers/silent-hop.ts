// A next hop that accepts connections and never sends its greeting, so a
// delivery to it stays in flight until the test closes the sockets.

import * as net from 'node:net';
import type { TestContext } from 'node:test';
import { freePortOn } from './process';

export interface SilentHop {
  /** The port on 127.0.0.2 it listens on. */
  port: number;
  /** The connections open now. */
  sockets: Set<net.Socket>;
  /** Closes the listener and every connection, so the port can be taken by another server. */
  close(): Promise<void>;
}

/** Starts a silent next hop on 127.0.0.2; it is closed after the test. */
export async function startSilentHop(t: TestContext): Promise<SilentHop> {
  const port = await freePortOn(['127.0.0.2']);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.2', resolve));
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
    return closed;
  };
  t.after(() => close());
  return { port, sockets, close };
}
