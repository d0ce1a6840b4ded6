// A connection that check_relay rejects with 421 (ClientConn: with
// conncontrol's `terminate`) must release its ${client_connections} count and
// its file descriptor when the client sends QUIT and a FIN after the 421.
// Otherwise each such connection keeps its count for the life of the daemon,
// and once MaxDaemonChildren is reached the daemon greets no client at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { sleep } from '../helpers/process';

interface Conn {
  socket: net.Socket;
  /** First reply line, or "(closed)" when the server closed without one. */
  first: Promise<string>;
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    let text = '';
    const first = new Promise<string>((done) => {
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n')) done(text.slice(0, text.indexOf('\r\n')));
      });
      socket.on('close', () => done(text === '' ? '(closed)' : text));
      setTimeout(() => done(`(no reply) ${text}`), 10_000);
    });
    socket.on('connect', () => resolve({ socket, first }));
  });
}

async function codes(port: number, n: number, localAddress?: string): Promise<string[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < n; i++) conns.push(await connect(port, localAddress));
  const firsts = await Promise.all(conns.map((c) => c.first));
  for (const c of conns) c.socket.destroy();
  return firsts.map((line) => line.slice(0, 3)).sort();
}

async function startLimited(t: { after(fn: () => unknown): void }, workers: number) {
  const dir = fs.mkdtempSync('/tmp/break10-access-');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const access = path.join(dir, 'access');
  fs.writeFileSync(access, 'ClientConn:127.0.0.1 2\n');
  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        `FEATURE(\`access_db', \`text ${access}')`,
        "FEATURE(`conncontrol', `nodelay', `terminate')",
        "define(`confMAX_DAEMON_CHILDREN', `6')",
        `define(\`confWORKERS', \`${workers}')`,
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  return ph;
}

for (const workers of [1, 2]) {
  test(`ClientConn 421 then QUIT (Workers=${workers})`, { timeout: 90_000 }, async (t) => {
    const ph = await startLimited(t, workers);
    await sleep(500);
    assert.deepEqual(await codes(ph.port, 2), ['220', '220']);
    await sleep(500);

    // Four rounds of five: two get 220, three get 421. Every client then
    // sends QUIT and half-closes, as a polite client does.
    for (let round = 0; round < 4; round++) {
      const conns: Conn[] = [];
      for (let i = 0; i < 5; i++) conns.push(await connect(ph.port));
      await Promise.all(conns.map((c) => c.first));
      for (const c of conns) {
        if (!c.socket.destroyed) c.socket.end('QUIT\r\n');
      }
      await sleep(300);
    }
    await sleep(1500);

    assert.deepEqual(await codes(ph.port, 2), ['220', '220'], 'counts of closed connections were kept');
    const other = await codes(ph.port, 1, '127.0.0.9');
    assert.deepEqual(other, ['220'], 'another client address is no longer greeted');
  });
}
