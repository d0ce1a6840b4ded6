// BY=-999999999;N is the lowest by-time that MAIL accepts. Once the message
// has waited a second, the by-time less the seconds queued is below that.
// sendmail 8.17's smtpmailfrom() (usersmtp.c) sends it anyway, and a next hop
// that checks the range replies 501 and the message bounces. posthorn sends
// at most nine digits, so the next hop takes the message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { sleep } from '../helpers/process';

test('lowest N by-time after a wait', { timeout: 120_000 }, async (t) => {
  const next = await startPosthorn({
    // Its own name: a next hop that greets with the sender's name is the sender (mail loops back).
    mc: baseMc({ extra: ["LOCAL_DOMAIN(`remote.test')", "define(`confDOMAIN_NAME', `mx.remote.test')"] }),
    args: ['-O', 'DeliveryMode=deferred'],
  });
  t.after(() => next.stop());
  const first = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${next.port}')`] }),
    args: ['-O', 'DeliveryMode=deferred'],
  });
  t.after(() => first.stop());

  const replies = await rawSmtp(first.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test> BY=-999999999;N',
    'RCPT TO:<carol@remote.test>',
    'DATA',
    'Subject: by\r\n\r\nHello.\r\n.',
    'QUIT',
  ]);
  assert.equal(replies[2], '250 2.1.0 <snd@posthorn.test>... Sender ok');
  assert.match(replies[5], /^250 2\.0\.0 /);

  // The by-time of an N request may pass, and the message must still be sent.
  await sleep(2000);
  const run = await first.run(['-qf']);
  assert.equal(run.code, 0);
  const line = await first.waitForLog(/to=<carol@remote\.test>.*/);
  assert.match(line[0], /stat=Sent/, `the next hop refused the forwarded BY=:\n${line[0]}`);
});
