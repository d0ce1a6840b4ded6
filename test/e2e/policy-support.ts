// Helpers for the access map and connection policy scenarios: an access map
// compiled with the real makemap program, and a captured TLS ClientHello.

import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/peers';

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
