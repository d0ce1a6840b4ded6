// mailertable, virtusertable, genericstable and masquerade_envelope end to
// end: a mailertable route to a sink on its own address, a virtual address
// delivered to a local mailbox through the aliases, and the rewritten sender
// that the next hop sees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';
import { freePortOn } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('tables route and rewrite', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());

  const mc = baseMc({
    mailerPort,
    extra: [
      ...NO_LOAD_LIMITS,
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "FEATURE(`mailertable', `text @DIR@/mailertable')",
      "FEATURE(`virtusertable', `text @DIR@/virtusertable')",
      "FEATURE(`genericstable', `text @DIR@/genericstable')",
      "GENERICS_DOMAIN(`posthorn.test')",
      "MASQUERADE_AS(`example.com')",
      "FEATURE(`masquerade_envelope')",
      "define(`SMART_HOST', `[127.0.0.9]')",
    ],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), 'sales: alice\n');
  fs.writeFileSync(path.join(ph.dir, 'mailertable'), '.partner.example esmtp:[127.0.0.2]\nblocked.example error:5.7.1:550 Mail to blocked.example refused\n');
  fs.writeFileSync(path.join(ph.dir, 'virtusertable'), 'info@posthorn.test sales\nbob+*@posthorn.test bob-%2@mail.partner.example\n');
  fs.writeFileSync(path.join(ph.dir, 'genericstable'), 'carol@posthorn.test carol.jones@example.org\n');

  const sent = await sendRaw({
    port: ph.port,
    from: 'carol@posthorn.test',
    to: ['info@posthorn.test', 'dave@mail.partner.example', 'bob+news@posthorn.test', 'x@blocked.example'],
    data: makeMessage({ from: 'Carol <carol@posthorn.test>', to: 'info@posthorn.test', subject: 'tables', body: 'Routed by the tables.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  const q = quoteRe(sent.queueId);

  // virtusertable: info@ -> sales -> alice (through the aliases).
  const box = await ph.waitForMailbox('alice', 'Routed by the tables.\n\n', 20_000);
  assert.match(box, /^Subject: tables$/m);

  // mailertable wins over SMART_HOST; virtusertable output bob-news@mail.partner.example takes the same route.
  const messages = await sink.waitForMessages(1, 20_000);
  assert.deepEqual(messages[0].to.sort(), ['bob-news@mail.partner.example', 'dave@mail.partner.example']);
  // genericstable rewrote the sender in the header and, with masquerade_envelope, in MAIL FROM.
  assert.equal(messages[0].from, 'carol.jones@example.org');
  assert.match(messages[0].data.toString('latin1'), /^From: Carol <carol\.jones@example\.org>$/m);

  await ph.waitForLog(new RegExp(`${q}: to=<x@blocked\\.example>, .*dsn=5\\.7\\.1, stat=Mail to blocked\\.example refused`), 20_000);
  // The sink has the message before posthorn has read its reply and logged the delivery.
  await ph.waitForLog(new RegExp(`${q}: to=<dave@mail\\.partner\\.example>.*mailer=esmtp, .*relay=.*127\\.0\\.0\\.2.*stat=Sent`), 20_000);

  const verify = await ph.run(['-bv', 'info@posthorn.test', 'dave@mail.partner.example']);
  assert.equal(verify.stdout, [
    'alice... deliverable: mailer local, user alice',
    'dave@mail.partner.example... deliverable: mailer esmtp, host [127.0.0.2], user dave@mail.partner.example',
    '',
  ].join('\n'));
});
