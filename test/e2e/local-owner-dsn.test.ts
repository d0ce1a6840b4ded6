// sendmail's owner- convention: the copies of a list with an owner- alias go
// out with the owner as envelope sender, and the DSNs for the list's members go
// to the owner, not to the message's sender. Sent with swaks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { swaks } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { quoteRe } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('DSNs for owner- list members go to the owner', async (t) => {
  if (!requirePeer(t, 'swaks')) return;
  const mc = baseMc({ extra: [...NO_LOAD_LIMITS, "define(`ALIAS_FILE', `@DIR@/aliases')"] });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), [
    'staff: alice, "|exit 67"',
    'owner-staff: listmaster',
    'solo: "|exit 68"',
    '',
  ].join('\n'));

  const run = await swaks(['--server', '127.0.0.1', '--port', String(ph.port), '--from', 'sender@posthorn.test',
    '--to', 'staff@posthorn.test,solo@posthorn.test', '--header', 'Subject: owner test', '--body', 'To the list.']);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const id = /250 2\.0\.0 (\S+) Message accepted/.exec(run.stdout)?.[1];
  assert.ok(id, run.stdout);

  // alice's copy carries the owner as envelope sender.
  const copy = await ph.waitForMailbox('alice', 'To the list.', 20_000);
  assert.match(copy, /^Return-Path: <listmaster@mx\.posthorn\.test>$/m);

  // The failure of a list member goes to the owner, and the failure of the direct alias to the sender.
  const ownerDsn = await ph.waitForMailbox('listmaster', 'Action: failed', 20_000);
  assert.match(ownerDsn, /^Final-Recipient: RFC822; \|exit 67$/mi);
  assert.match(ownerDsn, /^Original-Recipient: rfc822;staff@posthorn\.test$/mi);
  const senderDsn = await ph.waitForMailbox('sender', 'Action: failed', 20_000);
  assert.match(senderDsn, /^Original-Recipient: rfc822;solo@posthorn\.test$/mi);
  assert.doesNotMatch(senderDsn, /^Original-Recipient: rfc822;staff@posthorn\.test$/mi);
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: \\w+: DSN: User unknown`), 10_000);
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: \\w+: DSN: Host unknown`), 10_000);
});
