// LocalUserCheck=passwd refusing unknown local names at RCPT (Python smtplib
// as the client), and mailertable values "mailer:user@host" sending the user
// part to the host on the named mailer's own port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';
import { freePortOn } from '../helpers/process';
import { rawSmtp, smtplibSend } from '../helpers/clients';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('LocalUserCheck=passwd refuses unknown local names', async (t) => {
  const mc = baseMc({
    extra: [...NO_LOAD_LIMITS, "define(`ALIAS_FILE', `@DIR@/aliases')", "define(`confLOCAL_USER_CHECK', `passwd')"],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), 'sales: alice\nalice: /dev/null\n');

  const result = await smtplibSend({
    port: ph.port,
    from: 'someone@example.org',
    to: ['root@posthorn.test', 'sales@posthorn.test', 'ghost@posthorn.test', 'root+tag@posthorn.test'],
    data: makeMessage({ from: 'someone@example.org', to: 'sales@posthorn.test', subject: 'check', body: 'Hi.' }),
  });
  assert.deepEqual(result.rcpt.map((r) => r.code), [250, 250, 550, 250], JSON.stringify(result.rcpt));
  assert.equal(result.rcpt[2].text, '5.1.1 <ghost@posthorn.test>... User unknown');
  await ph.waitForLog(/: <ghost@posthorn\.test>\.\.\. User unknown$/m, 10_000);

  const vrfy = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'VRFY ghost', 'VRFY sales', 'QUIT']);
  assert.equal(vrfy[2], '550 5.1.1 <ghost@mx.posthorn.test>... User unknown');
  assert.equal(vrfy[3], '250 2.1.5 <sales@mx.posthorn.test>');
});

test('LocalUserCheck=any (the default) accepts every local name', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }) });
  t.after(() => ph.stop());
  const replies = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'MAIL FROM:<a@example.org>', 'RCPT TO:<ghost@posthorn.test>', 'QUIT']);
  assert.equal(replies[3], '250 2.1.5 <ghost@posthorn.test>... Recipient ok');
});

test('mailertable mailer:user@host sends the user on the mailer port', async (t) => {
  const esmtpPort = await freePortOn(['127.0.0.2']);
  const relayPort = await freePortOn(['127.0.0.3']);
  const sink = await startSink({ host: '127.0.0.3', port: relayPort });
  t.after(() => sink.close());
  const mc = baseMc({
    mailerPort: esmtpPort,
    extra: [
      ...NO_LOAD_LIMITS,
      "FEATURE(`mailertable', `text @DIR@/mailertable')",
      `define(\`RELAY_MAILER_ARGS', \`TCP $h ${relayPort}')`,
    ],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'mailertable'), '.users.example relay:catchall-%1@[127.0.0.3]\n');

  const sent = await sendRaw({
    port: ph.port,
    from: 'carol@posthorn.test',
    to: ['dave@eu.users.example', 'erin@us.users.example'],
    data: makeMessage({ from: 'carol@posthorn.test', to: 'dave@eu.users.example', subject: 'user part', body: 'To the user.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  const messages = await sink.waitForMessages(1, 20_000);
  assert.deepEqual(messages[0].to.sort(), ['catchall-eu@[127.0.0.3]', 'catchall-us@[127.0.0.3]']);
  await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: to=.*mailer=relay, .*stat=Sent`), 20_000);
});
