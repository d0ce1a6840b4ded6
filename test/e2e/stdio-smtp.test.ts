// -bs: an SMTP session on standard input and output, and -bP output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';

test('-bs session queues a message', async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());

  const input = [
    'EHLO local.example',
    'MAIL FROM:<alice@posthorn.test>',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    'Subject: via -bs',
    '',
    'hello',
    '.',
    'QUIT',
    '',
  ].join('\r\n');
  const result = await ph.run(['-bs', '-O', 'DeliveryMode=queueonly'], input);
  assert.equal(result.code, 0, result.stderr);

  const lines = result.stdout.split('\r\n');
  assert.match(lines[0], /^220 mx\.posthorn\.test ESMTP Posthorn /);
  assert.ok(lines.includes('250 2.1.0 <alice@posthorn.test>... Sender ok'), result.stdout);
  // A local -bs user may relay, as sendmail allows.
  assert.ok(lines.includes('250 2.1.5 <bob@remote.example>... Recipient ok'), result.stdout);
  const accepted = lines.find((l) => l.startsWith('250 2.0.0 '));
  assert.match(accepted ?? '', /^250 2\.0\.0 \w{14} Message accepted for delivery$/);
  assert.ok(lines.includes('221 2.0.0 mx.posthorn.test closing connection'), result.stdout);

  const id = (accepted ?? '').split(' ')[2];
  assert.ok(ph.queueFiles().includes(`qf${id}`), ph.queueFiles().join(' '));
  const mailq = await ph.run(['-bp']);
  assert.match(mailq.stdout, new RegExp(`${id}\\s+\\d+ .* <alice@posthorn\\.test>`));
});

test('-bP prints effective options', async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  const result = await ph.run(['-bP', '-O', 'MaxMessageSize=1000']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^O MaxMessageSize=1000\b.*-O/m);
  assert.match(result.stdout, new RegExp(`^O QueueDirectory=${ph.queueDir.replace(/[/.]/g, '\\$&')}`, 'm'));
});

test('unknown option in .mc is a configuration error', async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  const result = await ph.run(['-bp', '-O', 'NoSuchOption=1']);
  assert.equal(result.code, 78);
  assert.match(result.stderr, /unknown option name NoSuchOption/);
});
