// LMTP to a real Dovecot over a unix socket: local mail goes through the
// cyrusv2 mailer (confLOCAL_MAILER) to Dovecot's LMTP service, after alias
// expansion, and lands in the Maildir that Dovecot writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { waitFor } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { startDovecot } from '../helpers/dovecot';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('dovecot lmtp via cyrusv2 socket', async (t) => {
  const bin = requirePeer(t, 'dovecot');
  if (bin === undefined) return;
  const dovecot = await startDovecot(t, bin);
  assert.ok(dovecot.socket, 'dovecot listens on a unix socket');

  const mc = baseMc({
    extra: [
      ...NO_LOAD_LIMITS,
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confLOCAL_MAILER', `cyrusv2')",
      "define(`CYRUSV2_MAILER_ARGS', `FILE @SOCKET@')",
      "MAILER(`cyrusv2')",
    ],
  });
  const ph = await startPosthorn({ mc, vars: { SOCKET: dovecot.socket } });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), 'team: alice, bob\n');

  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['team@posthorn.test', 'carol@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'team@posthorn.test', subject: 'dovecot lmtp', body: 'Into the Maildir.\n.dot line' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<carol@posthorn\\.test>, .*stat=Sent`), 30_000);
  await ph.waitForLog(new RegExp(`${q}: to=<bob>, .*mailer=local, .*stat=Sent`), 30_000);
  assert.match(ph.logs(), new RegExp(`${q}: to=<alice>, .*stat=Sent \\(<alice> .*Saved\\)`));

  for (const user of ['alice', 'bob', 'carol']) {
    const messages = dovecot.messages(user);
    assert.equal(messages.length, 1, `${user}: ${messages.length} messages\n${dovecot.log()}`);
    assert.match(messages[0], /^Return-Path: <sender@remote\.example>$/m);
    assert.match(messages[0], /^Subject: dovecot lmtp$/m);
    assert.match(messages[0], /^\.dot line$/m);
  }
  // The item is removed just after the last "to=" line is logged.
  await waitFor('the queue item to be removed', async () => ph.queueFiles().every((f) => !f.endsWith(sent.queueId)), 10_000);
});

test('dovecot socket down defers', async (t) => {
  const mc = baseMc({
    extra: [...NO_LOAD_LIMITS, "define(`confLOCAL_MAILER', `cyrusv2')", "define(`CYRUSV2_MAILER_ARGS', `FILE @DIR@/absent.sock')", "MAILER(`cyrusv2')"],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['alice@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'alice@posthorn.test', subject: 'no socket', body: 'Waits.' }),
  });
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<alice@posthorn\\.test>, .*stat=Deferred: `), 30_000);
  assert.ok(ph.queueFiles().includes(`qf${sent.queueId}`));
});
