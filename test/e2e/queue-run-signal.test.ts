// A one-time queue run (-qf) stopped by SIGTERM lets its running deliveries
// finish, so that the next run sends no message twice and no lock stays.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn } from '../helpers/posthorn';
import { fillQueue } from '../helpers/queue-fill';
import { runCommand, waitFor } from '../helpers/process';

/** Starts a next hop that replies to the final dot after `delayMs` and records each Subject it accepted. */
async function slowNextHop(delayMs: number): Promise<{ port: number; subjects: string[]; dots: () => number; close(): void }> {
  const subjects: string[] = [];
  let dots = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 slow.test ESMTP\r\n');
    let text = '';
    let inData = false;
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      for (let eol = text.indexOf('\r\n'); eol >= 0; eol = text.indexOf('\r\n')) {
        const line = text.slice(0, eol);
        text = text.slice(eol + 2);
        if (inData) {
          const subject = /^Subject: (.*)$/.exec(line);
          if (subject) subjects.push(subject[1]);
          if (line !== '.') continue;
          inData = false;
          dots += 1;
          setTimeout(() => socket.writable && socket.write('250 2.0.0 accepted\r\n'), delayMs);
        } else if (/^EHLO/i.test(line)) socket.write('250-slow.test\r\n250 PIPELINING\r\n');
        else if (/^DATA/i.test(line)) {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    subjects,
    dots: () => dots,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

test('SIGTERM during -qf lets running deliveries finish', { timeout: 90_000 }, async (t) => {
  const hop = await slowNextHop(1500);
  t.after(() => hop.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hop.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());

  const count = 6;
  const messages = Array.from({ length: count }, (_, i) => ({
    from: 'a@posthorn.test',
    to: ['b@remote.example'],
    subject: `run-${i}`,
    body: 'x',
  }));
  await fillQueue(ph.port, messages);

  const run = spawn(process.execPath, [posthornBin, '-C', ph.mcPath, '-qf'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => run.once('exit', (code) => resolve(code)));
  // Every delivery has sent its final dot and waits for the reply.
  await waitFor('final dots at the next hop', () => hop.dots() >= count, 30_000);
  run.kill('SIGTERM');
  assert.equal(await exited, 143);
  assert.deepEqual(ph.queueFiles().filter((name) => /^(qf|df|lf)/.test(name)), [], 'every delivery finished and unlocked');

  const again = await runCommand(posthornBin, ['-C', ph.mcPath, '-qf']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual([...hop.subjects].sort(), messages.map((m) => m.subject).sort(), 'each message once');
  assert.match(ph.logs(), /stopping queue run, reason=SIGTERM/);
});
