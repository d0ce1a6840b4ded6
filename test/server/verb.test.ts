// VERB: the session's messages are delivered before the reply to DATA, and
// the delivery shows as sendmail's "050" lines ahead of that reply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';

/**
 * Sends each step once the server's output matches the step's `after`, and
 * returns everything the server writes until it closes.
 */
function converse(port: number, steps: Array<{ after: RegExp; send: string }>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let next = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; received:\n${received}`));
    }, 30_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      while (next < steps.length && steps[next].after.test(received)) socket.write(steps[next++].send);
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

test('VERB shows the delivery as 050 lines', { timeout: 60_000 }, async (t) => {
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());

  const output = await converse(ph.port, [
    { after: /^220 /m, send: 'EHLO client.example\r\n' },
    { after: /^250 HELP/m, send: 'VERB\r\nMAIL FROM:<alice@posthorn.test>\r\nRCPT TO:<bob@remote.example>\r\nDATA\r\n' },
    { after: /^354 /m, send: 'Subject: verbose\r\n\r\nWatch it go.\r\n.\r\n' },
    { after: /^250 2\.0\.0 \S+ Message accepted/m, send: 'QUIT\r\n' },
  ]);
  const lines = output.split('\r\n');

  assert.ok(lines.includes('250 2.0.0 Verbose mode'));
  const verbose = lines.filter((line) => line.startsWith('050 '));
  assert.match(verbose[0] ?? '', /^050 <bob@remote\.example>\.\.\. Connecting to .* via relay\.\.\.$/);
  assert.ok(verbose.some((l) => /^050 >>> MAIL From:<alice@posthorn\.test>/i.test(l)), verbose.join('\n'));
  assert.ok(verbose.some((l) => /^050 >>> RCPT To:<bob@remote\.example>/i.test(l)), verbose.join('\n'));
  assert.match(verbose.at(-1) ?? '', /^050 <bob@remote\.example>\.\.\. Sent \(/);

  // The 050 lines come after the 354 and before the reply to the final dot.
  const accepted = lines.findIndex((line) => /^250 2\.0\.0 \S+ Message accepted for delivery$/.test(line));
  assert.ok(accepted > lines.indexOf(verbose.at(-1)!), lines.join('\n'));
  assert.ok(lines.indexOf(verbose[0]) > lines.findIndex((line) => line.startsWith('354 ')));
  assert.equal(sink.messages.length, 1, 'delivered before the reply');
});
