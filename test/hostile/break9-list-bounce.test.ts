// A list member that fails for good bounces on its own: the DSN must go to the
// list's owner- alias when there is one, as sendmail sends errors for list
// members to owner-<list>, and a later queue run must not bounce it again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { makeMessage, sendRaw } from '../helpers/e2e-setup';

test('failed member DSN goes to owner-list', { timeout: 90_000 }, async (t) => {
  const mc = baseMc({
    extra: [
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
    ],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  const aliases = [`crew: frank, :include:${ph.dir}/gone.txt`, 'owner-crew: listmaster', ''].join('\n');
  fs.writeFileSync(path.join(ph.dir, 'aliases'), aliases);

  const sent = await sendRaw({
    port: ph.port,
    from: 'gina@posthorn.test',
    to: ['crew@posthorn.test'],
    data: makeMessage({ from: 'gina@posthorn.test', to: 'crew@posthorn.test', subject: 'crew news', body: 'To the crew.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  await ph.waitForMailbox('frank', 'To the crew.');

  // The list has an owner, so the owner gets the DSN for the unreadable :include: file.
  const dsn = await ph.waitForMailbox('listmaster', 'Cannot open', 20_000);
  assert.match(dsn, /Status: 5\.2\.4/);
  assert.doesNotMatch(ph.mailbox('gina'), /Cannot open/);
});

test('failed member bounces once across runs', { timeout: 90_000 }, async (t) => {
  const mc = baseMc({
    extra: [
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
    ],
  });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  // far@127.0.0.1.invalid cannot be resolved and stays deferred, so the message stays in the queue for a second run.
  const aliases = [`crew: frank, :include:${ph.dir}/gone.txt, far@127.0.0.1.invalid`, ''].join('\n');
  fs.writeFileSync(path.join(ph.dir, 'aliases'), aliases);
  const sent = await sendRaw({
    port: ph.port,
    from: 'gina@posthorn.test',
    to: ['crew@posthorn.test'],
    data: makeMessage({ from: 'gina@posthorn.test', to: 'crew@posthorn.test', subject: 'crew news', body: 'To the crew.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));

  for (let run = 0; run < 3; run++) {
    const result = await ph.run(['-q']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  }
  const bounces = ph.mailbox('gina').match(/Status: 5\.2\.4/g) ?? [];
  assert.equal(bounces.length, 1, ph.mailbox('gina'));
  assert.equal((ph.mailbox('frank').match(/To the crew\./g) ?? []).length, 1);
});
