// MaxQueueRunSize limits a queue run to its first N items after sorting
// (docs/options.md, docs/queue-operations.md). A version of the queue run
// that listed the folder before the journal recovery wrote out the items a
// killed daemon left in its journal added those items at the end of the run,
// without that limit. The recovery runs first, so the limit counts them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaveJournal } from '../helpers/left-journal';

const MESSAGES = 10;

test('MaxQueueRunSize counts journal items', { timeout: 55_000 }, async (t) => {
  const { ph, sink } = await leaveJournal(t, MESSAGES);
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
