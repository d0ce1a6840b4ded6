// Control bytes from the network must not reach the log file, the control
// file or mailq's output as they came. An administrator reads these in a
// terminal, where ESC sequences set the title, clear the screen or recolour
// later text, and a NUL makes GNU grep report the log as a binary file. They
// become '?', as in the replies to the client.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';

const ESCAPES = '\x1b]0;PWNED\x07\x1b[2J\x1b[31m';
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

function shown(text: string): string {
  return JSON.stringify(text.split('\n').filter((line) => CONTROL.test(line)));
}

/** Starts a next hop that replies 451 to every RCPT, with ESC sequences and a NUL in the text. */
function startEvilHop(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('220 evil.test ESMTP\r\n');
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const verb = buffered.slice(0, 4).toUpperCase();
        buffered = buffered.slice(end + 2);
        if (verb === 'EHLO') socket.write('250-evil.test\r\n250 PIPELINING\r\n');
        else if (verb === 'RCPT') socket.write(`451 4.0.0 ${ESCAPES}red\x00after the NUL\r\n`);
        else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('Message-Id escapes in the log', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    'RCPT TO:<bob@posthorn.test>',
    'DATA',
    `Subject: hi\r\nMessage-Id: <${ESCAPES}@client.posthorn.test>\r\n\r\nHello.\r\n.`,
    'QUIT',
  ]);
  assert.match(replies[5], /^250 2\.0\.0 /);
  const fromLine = await ph.waitForLog(/from=<snd@posthorn\.test>.*/);
  assert.doesNotMatch(fromLine[0], CONTROL, `the from= line carries the client's control bytes: ${JSON.stringify(fromLine[0])}`);
});

test('next hop reply escapes in log, qf and mailq', { timeout: 60_000 }, async (t) => {
  const hop = await startEvilHop();
  const port = (hop.address() as net.AddressInfo).port;
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${port}')`] }),
  });
  t.after(async () => {
    await ph.stop();
    await new Promise<void>((resolve) => hop.close(() => resolve()));
  });

  await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    'RCPT TO:<carol@remote.test>',
    'DATA',
    'Subject: hi\r\n\r\nHello.\r\n.',
    'QUIT',
  ]);
  await ph.waitForLog(/to=<carol@remote\.test>.*stat=Deferred/);

  assert.doesNotMatch(ph.logs(), CONTROL, `log lines with control bytes: ${shown(ph.logs())}`);
  const qf = ph.queueFiles().find((name) => name.startsWith('qf'));
  assert.ok(qf !== undefined, 'the deferred item is queued');
  const control = fs.readFileSync(path.join(ph.queueDir, qf), 'latin1');
  assert.doesNotMatch(control, CONTROL, `control file lines with control bytes: ${shown(control)}`);
  const mailq = await ph.run(['-bp']);
  assert.equal(mailq.code, 0);
  assert.doesNotMatch(mailq.stdout, CONTROL, `mailq lines with control bytes: ${shown(mailq.stdout)}`);
});
