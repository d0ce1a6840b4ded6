// A list member that fails for good bounces on its own: the DSN must go to the
// list's owner- alias when there is one, as sendmail sends errors for list
// members to owner-<list>, and a later queue run must not bounce it again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { makeMessage, sendRaw } from '../helpers/e2e-setup';
import { freePort } from '../helpers/process';

/**
 * Starts a daemon whose aliases are `lines` (@DIR@ is its folder). Other
 * domains go to a smart host on a closed loopback port, so they stay deferred
 * and no DNS query is made.
 */
async function startWithList(t: { after(fn: () => Promise<void>): void }, lines: string[], args: string[] = []): Promise<Posthorn> {
  const closedPort = await freePort();
  const mc = baseMc({
    extra: [
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')",
      "define(`SMART_HOST', `[127.0.0.1]')",
      `define(\`RELAY_MAILER_ARGS', \`TCP $h ${closedPort}')`,
    ],
  });
  const ph = await startPosthorn({ mc, args });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), lines.map((line) => line.replace(/@DIR@/g, ph.dir)).join('\n') + '\n');
  return ph;
}

/** Sends one message from gina to the crew list. */
async function sendToCrew(ph: Posthorn): Promise<void> {
  const sent = await sendRaw({
    port: ph.port,
    from: 'gina@posthorn.test',
    to: ['crew@posthorn.test'],
    data: makeMessage({ from: 'gina@posthorn.test', to: 'crew@posthorn.test', subject: 'crew news', body: 'To the crew.' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
}

test('failed member DSN goes to owner-list', { timeout: 90_000 }, async (t) => {
  const ph = await startWithList(t, ['crew: frank, :include:@DIR@/gone.txt', 'owner-crew: listmaster']);
  await sendToCrew(ph);
  await ph.waitForMailbox('frank', 'To the crew.');

  // The list has an owner, so the owner gets the DSN for the unreadable :include: file.
  const dsn = await ph.waitForMailbox('listmaster', 'Cannot open', 20_000);
  assert.match(dsn, /Status: 5\.2\.4/);
  assert.doesNotMatch(ph.mailbox('gina'), /Cannot open/);
});

test('failed member bounces once across runs', { timeout: 90_000 }, async (t) => {
  // far@remote.example goes to a closed port and stays deferred, so the message stays queued for more runs.
  const ph = await startWithList(t, ['crew: frank, :include:@DIR@/gone.txt, far@remote.example'], ['-O', 'DeliveryMode=queueonly']);
  await sendToCrew(ph);

  for (let run = 0; run < 3; run++) {
    const result = await ph.run(['-qf']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  }
  const bounces = ph.mailbox('gina').match(/Status: 5\.2\.4/g) ?? [];
  assert.equal(bounces.length, 1, ph.mailbox('gina'));
  assert.equal((ph.mailbox('frank').match(/To the crew\./g) ?? []).length, 1);
  assert.ok(ph.queueFiles().some((name) => name.startsWith('qf')), 'still queued for far@remote.example');
});
