// -bs on a TCP socket decides between "client at the other end" and "local
// user" by finding the socket's inode in /proc/net/tcp and tcp6. A socket that
// is missing there is taken for a pipe, and the session may relay. These tests
// make a remote client's socket go missing there: a connection reset before
// the check, and a network namespace other than the socket's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from '../helpers/posthorn';

const TRANSACTION = [
  'EHLO client.example',
  'MAIL FROM:<alice@example.org>',
  'RCPT TO:<bob@remote.example>',
  'DATA',
  'Subject: relayed',
  '',
  'body',
  '.',
  'QUIT',
  '',
].join('\r\n');

interface Exit {
  code: number | null;
  stderr: string;
}

/**
 * Listens on 127.0.0.1 and, without reading from the connection (as inetd
 * does), runs `prefix... posthorn -bs` with it as standard input, and as
 * standard output if `stdout` is 'socket'. `exit` is the first child's exit.
 */
async function inetdOnce(ph: Posthorn, stdout: 'socket' | 'pipe', prefix: string[] = []): Promise<{ port: number; exit: Promise<Exit>; server: net.Server }> {
  let settle: (exit: Exit) => void = () => {};
  const exit = new Promise<Exit>((resolve) => (settle = resolve));
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => {});
    const argv = [...prefix, process.execPath, posthornBin, '-C', ph.mcPath, '-bs', '-O', 'DeliveryMode=queueonly'];
    const stdio: StdioOptions = [socket, stdout === 'socket' ? socket : 'pipe', 'pipe'];
    const child = spawn(argv[0], argv.slice(1), { stdio });
    child.stdout?.resume();
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('latin1')));
    child.on('exit', (code) => settle({ code, stderr }));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { port: (server.address() as net.AddressInfo).port, exit, server };
}

/** Connects from 127.0.0.2, the remote client. */
async function connectRemote(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

/** Returns the R lines of the queued messages. */
function queuedRecipients(ph: Posthorn): string[] {
  return ph
    .queueFiles()
    .filter((name) => name.startsWith('qf'))
    .flatMap((name) => fs.readFileSync(path.join(ph.queueDir, name), 'latin1').split('\n').filter((line) => line.startsWith('R')));
}

test('reset remote connection does not relay', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());
  // Standard output is not the socket (a log, a pipe to a wrapper), so the
  // failed writes of the replies do not end the session.
  const { port, exit, server } = await inetdOnce(ph, 'pipe');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = await connectRemote(port);
  // The data stays readable after the reset, but the socket leaves /proc/net/tcp.
  client.write(TRANSACTION, () => client.resetAndDestroy());
  const result = await exit;

  assert.deepEqual(queuedRecipients(ph), [], `a message from 127.0.0.2 was queued for relaying; stderr: ${result.stderr}`);
});

test('reset socket exits cleanly', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());
  const { port, exit, server } = await inetdOnce(ph, 'socket');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = await connectRemote(port);
  client.write(TRANSACTION, () => client.resetAndDestroy());
  const result = await exit;

  assert.doesNotMatch(result.stderr, /Unhandled 'error' event/);
  assert.equal(result.code, 0, result.stderr);
});

const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;

test('other network namespace denies relaying', { timeout: 60_000, skip: !canUnshare && 'unshare -n is not allowed here' }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());
  // As a systemd socket unit with PrivateNetwork=yes starts it: the socket
  // comes from the host's namespace, /proc/net/tcp shows the service's own.
  const { port, exit, server } = await inetdOnce(ph, 'socket', ['unshare', '-n']);
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = await connectRemote(port);
  let replies = '';
  client.setEncoding('latin1');
  client.on('data', (chunk: string) => (replies += chunk));
  client.end(TRANSACTION);
  await exit;

  assert.match(replies, /^550 5\.7\.1 <bob@remote\.example>\.\.\. Relaying denied/m, replies);
  assert.deepEqual(queuedRecipients(ph), [], replies);
});
