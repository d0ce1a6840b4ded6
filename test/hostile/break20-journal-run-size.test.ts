// MaxQueueRunSize limits a queue run to its first N items after sorting
// (docs/options.md, docs/queue-operations.md). A queue run now lists the
// folder before the journal recovery writes out the items a killed daemon left
// in its journal, and adds those items at the end of the run without that
// limit. Before, the recovery ran first and the limit counted them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { startSilentHop } from '../helpers/silent-hop';
import { startSink } from '../helpers/sink';

const MESSAGES = 10;

test('MaxQueueRunSize counts journal items', { timeout: 55_000 }, async (t) => {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port });
  await Promise.all(Array.from({ length: MESSAGES }, (_, i) => sendToRemote(ph.port, `left ${i}`)));
  // Killed before the 5-second write-out: the items exist only in the journal.
  await ph.kill('SIGKILL');
  assert.equal(journalOpenIds(ph.queueDir).length, MESSAGES);

  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  const run = await ph.run(['-q', '-O', 'MaxQueueRunSize=3']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(sink.messages.length, 3, ph.logs());
  assert.equal(ph.queueFiles().filter((n) => n.startsWith('qf')).length, MESSAGES - 3);

  // The rest goes out in the next run, each message once.
  const rest = await ph.run(['-q']);
  assert.equal(rest.code, 0, rest.stderr);
  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1] ?? '').sort();
  assert.deepEqual(got, Array.from({ length: MESSAGES }, (_, i) => `left ${i}`).sort());
});
