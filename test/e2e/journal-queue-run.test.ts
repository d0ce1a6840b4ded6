// A queue run (`posthorn -q`) writes out the journals of a process that is
// gone before it lists the queue, and it reuses the recovery's read of the
// folder only when nothing was written out. The items written out must be
// delivered by that same run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quoteRe, sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { waitFor } from '../helpers/process';
import { startSilentHop } from '../helpers/silent-hop';
import { startSink } from '../helpers/sink';

test('posthorn -q delivers the items of a left journal in the same run', { timeout: 55_000 }, async (t) => {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port });
  const ids = [await sendToRemote(ph.port, 'left one'), await sendToRemote(ph.port, 'left two')];
  await waitFor('both in flight', () => silent.sockets.size >= 2, 10_000);
  // Killed before the 5-second write-out: the items exist only in the journal.
  await ph.kill('SIGKILL');
  assert.deepEqual(journalOpenIds(ph.queueDir).sort(), [...ids].sort());
  assert.deepEqual(ph.queueFiles().filter((n) => n.startsWith('qf')), []);

  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  // The run has ended, so both went out in it.
  assert.equal(sink.messages.length, 2, ph.logs());
  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]).sort();
  assert.deepEqual(got, ['left one', 'left two']);
  for (const id of ids) {
    assert.match(ph.logs(), new RegExp(`${quoteRe(id)}: written out from commit journal`));
    assert.match(ph.logs(), new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`));
  }
  assert.deepEqual(ph.queueFiles().filter((n) => !n.startsWith('.')), []);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
});
