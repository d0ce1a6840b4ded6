// -bs with a TCP connection as standard input, as inetd or a systemd socket
// unit starts it: the client at the other end is the session's client, as
// sendmail takes it from getpeername(). Only localhost may relay, so such a
// set-up is not an open relay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from '../helpers/posthorn';

/**
 * Listens on 127.0.0.1, runs `posthorn -bs` on each accepted connection with
 * the socket as its standard input and output, and returns the port.
 */
function inetdLike(t: { after(fn: () => Promise<void>): void }, ph: Posthorn): Promise<number> {
  const server = net.createServer((socket) => {
    const child = spawn(process.execPath, [posthornBin, '-C', ph.mcPath, '-bs', '-O', 'DeliveryMode=queueonly'], {
      stdio: [socket, socket, 'pipe'],
    });
    child.stderr?.resume();
    // The child has its own copy of the descriptor.
    socket.destroy();
  });
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Sends the commands one at a time from `localAddress` and returns the replies. */
function session(port: number, localAddress: string, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const replies: string[] = [];
    let buffered = '';
    let next = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; replies: ${replies.join(' | ')}`));
    }, 20_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (/^\d{3}-/.test(line)) continue;
        replies.push(line);
        if (next < commands.length) socket.write(`${commands[next++]}\r\n`);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
  });
}

const COMMANDS = ['EHLO client.example', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@remote.example>', 'QUIT'];

test('-bs on a socket denies relaying to a remote client', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());
  const port = await inetdLike(t, ph);

  const remote = await session(port, '127.0.0.2', COMMANDS);
  assert.match(remote[0], /^220 mx\.posthorn\.test ESMTP/);
  assert.match(remote[3], /^550 5\.7\.1 <bob@remote\.example>\.\.\. Relaying denied/, remote.join(' | '));

  const local = await session(port, '127.0.0.1', COMMANDS);
  assert.equal(local[3], '250 2.1.5 <bob@remote.example>... Recipient ok', local.join(' | '));
});

test('-bs on a socket applies the access map to the peer', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["FEATURE(`access_db', `text -o @DIR@/access')"] }),
  });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'access'), 'Connect:127.0.0.2\tRELAY\nConnect:127.0.0.3\tREJECT\n');
  const port = await inetdLike(t, ph);

  const allowed = await session(port, '127.0.0.2', COMMANDS);
  assert.equal(allowed[3], '250 2.1.5 <bob@remote.example>... Recipient ok', allowed.join(' | '));

  // As in a daemon session, a rejected client is greeted and its commands get 550.
  const rejected = await session(port, '127.0.0.3', COMMANDS);
  assert.equal(rejected[2], '550 5.7.1 Access denied', rejected.join(' | '));
});
