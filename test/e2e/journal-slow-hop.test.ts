// The 5-second write-out of an item still in the commit journal (store.ts,
// writeOutLingering) against the end of its first delivery. The next hop
// replies to the final dot after 3.6 to 6.6 s, so some deliveries end before the
// write-out, some while it runs and some after it. Half of the messages get
// 250 at the end, half 451. Each accepted message must arrive once and leave
// nothing behind; each deferred one must stay queued as df and qf, unlocked,
// with no journal entry left open.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendToRemote, startSinkHop } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';

/** The delay in ms and the verdict a message requests from the sink, from its subject. */
function wish(data: Buffer): { delay: number; defer: boolean } {
  const m = /^Subject: (accept|defer) after (\d+)\r$/m.exec(data.toString('latin1'));
  return { delay: m === null ? 0 : Number(m[2]), defer: m?.[1] === 'defer' };
}

test('write-out racing the end of a delivery', { timeout: 55_000 }, async (t) => {
  const { ph, sink } = await startSinkHop(t, {
    sink: {
      dotDelayMs: (data) => wish(data).delay,
      dotReply: (data) => (wish(data).defer ? '451 4.3.0 Try again later' : '250 2.0.0 Message accepted for delivery'),
    },
  });
  const subjects: string[] = [];
  for (let delay = 3600; delay <= 6600; delay += 200) {
    subjects.push(`accept after ${delay}`, `defer after ${delay}`);
  }
  const ids = await Promise.all(subjects.map((subject) => sendToRemote(ph.port, subject)));
  const accepted = ids.filter((_, i) => subjects[i].startsWith('accept'));
  const deferred = ids.filter((_, i) => subjects[i].startsWith('defer'));

  for (const id of accepted) await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);
  for (const id of deferred) await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Deferred`), 20_000);
  const leftOver = (id: string) => ph.queueFiles().filter((n) => n.endsWith(id));
  await waitFor('the delivered items removed', () => accepted.every((id) => leftOver(id).length === 0), 10_000).catch(() => undefined);
  await waitFor('the deferred items unlocked', () => deferred.every((id) => leftOver(id).join(' ') === `df${id} qf${id}`), 10_000).catch(() => undefined);

  // Every accepted message arrived once, and a deferred one is not taken for delivered.
  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]);
  for (const subject of subjects.filter((s) => s.startsWith('accept'))) {
    assert.equal(got.filter((s) => s === subject).length, 1, `"${subject}" arrived ${got.filter((s) => s === subject).length} times`);
  }
  for (const id of accepted) assert.deepEqual(leftOver(id), [], `delivered ${id} left files behind`);
  for (const id of deferred) assert.deepEqual(leftOver(id), [`df${id}`, `qf${id}`], `deferred ${id}`);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
  assert.deepEqual(fs.readdirSync(ph.queueDir).filter((n) => n.startsWith('tf')), []);

  // mailq lists the deferred ones, without the "*" of a locked item.
  const mailq = await ph.run(['-bp']);
  for (const id of deferred) assert.match(mailq.stdout, new RegExp(`^${quoteRe(id)} `, 'm'), mailq.stdout);
  for (const id of accepted) assert.doesNotMatch(mailq.stdout, new RegExp(quoteRe(id)));
  assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${deferred[0]}`)));
});
