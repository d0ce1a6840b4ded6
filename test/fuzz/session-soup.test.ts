// The live daemon against random byte soup: sequences of half-valid commands,
// control bytes and stray data sent in random pieces. Afterwards the daemon
// still serves a clean transaction and its log shows no session error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';

const PIECES = [
  'EHLO x\r\n', 'HELO x\r\n', 'MAIL FROM:<a@example.org>\r\n', 'MAIL FROM:<>\r\n', 'RCPT TO:<b@posthorn.test>\r\n',
  'RCPT TO:<"a@b"@posthorn.test>\r\n', 'DATA\r\n', 'RSET\r\n', 'NOOP\r\n', 'VRFY b\r\n', 'STARTTLS\r\n', 'HELP\r\n',
  '.\r\n', '\r\n.\r\n', '\n.\n', '\r.\r', '\r\n', '\n', '\r', '\0', '\xff', '<', '>', '@', ' SIZE=', ' BODY=8BITMIME',
  'Subject: x\r\n', 'X'.repeat(3000), 'QUIT\r\n',
];

/** Sends the pieces one per event-loop turn and waits until the server closes or 300 ms pass. */
function play(port: number, pieces: string[]): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 300);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => undefined);
    socket.on('connect', () => {
      let i = 0;
      const step = (): void => {
        if (i >= pieces.length || socket.destroyed) return;
        socket.write(pieces[i++], 'latin1');
        setImmediate(step);
      };
      step();
    });
  });
}

test('daemon survives random command soup', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc(),
    args: ['-O', 'DeliveryMode=queueonly', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });
  t.after(() => ph.stop());

  await fc.assert(
    fc.asyncProperty(fc.array(fc.constantFrom(...PIECES), { maxLength: 40 }), async (pieces) => {
      await play(ph.port, pieces);
    }),
    { numRuns: 30 },
  );

  const replies = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@posthorn.test>', 'DATA', 'Subject: after\r\n\r\nok\r\n.\r\n', 'QUIT']);
  assert.match(replies[5], /^250 2\.0\.0 \w{14} Message accepted for delivery$/);
  assert.doesNotMatch(ph.logs(), /session error|Internal error/);
  assert.equal(ph.proc.exitCode, null);
});
