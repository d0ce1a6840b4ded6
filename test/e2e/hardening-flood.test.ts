// A flood of slow clients: silent connections and clients that trickle one
// byte at a time do not stop a well-behaved client, and Timeout.command closes
// every one of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { waitFor } from '../helpers/process';

const SILENT = 200;
const TRICKLING = 50;

test('slow client flood is timed out', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc(),
    args: ['-O', 'DeliveryMode=queueonly', '-O', 'Timeout.command=3s', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });
  t.after(() => ph.stop());

  const sockets: net.Socket[] = [];
  const closedBy421 = new Set<net.Socket>();
  const ended = new Set<net.Socket>();
  const open = (): net.Socket => {
    const s = net.connect({ host: ph.addr, port: ph.port });
    s.on('error', () => undefined);
    s.on('end', () => ended.add(s));
    s.on('data', (d: Buffer) => {
      if (/^421 4\.4\.1 /m.test(d.toString('latin1'))) closedBy421.add(s);
    });
    sockets.push(s);
    return s;
  };
  t.after(() => sockets.forEach((s) => s.destroy()));

  for (let i = 0; i < SILENT; i++) open();
  const tricklers = Array.from({ length: TRICKLING }, open);
  const text = 'MAIL FROM:<slow@example.org>';
  let position = 0;
  const trickle = setInterval(() => {
    for (const s of tricklers) if (!s.destroyed) s.write(text[position % text.length]);
    position++;
  }, 250);
  t.after(() => clearInterval(trickle));

  // A normal client is served while all of them hold connections.
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example', 'MAIL FROM:<a@example.org>', 'RCPT TO:<bob@posthorn.test>', 'DATA',
    'Subject: through the flood\r\n\r\nhello\r\n.\r\n', 'QUIT',
  ], { timeoutMs: 10_000 });
  assert.match(replies[5], /^250 2\.0\.0 \w{14} Message accepted for delivery$/);

  // Every slow client gets the 421 and is closed, the tricklers included.
  await waitFor('the server to close every slow client', () => ended.size === SILENT + TRICKLING, 20_000);
  assert.equal(closedBy421.size, SILENT + TRICKLING);
});
