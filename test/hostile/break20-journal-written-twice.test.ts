// A left commit journal whose last entries were already written out as df and
// qf. The process was killed after those write-outs and before their D
// records, which is possible during the folder fsync that follows the rename
// of tf to qf. Recovery skips such an entry because its qf exists
// (queue-format.md, "Commit journal"). A version of the queue run listed the
// folder first, ran the recovery beside it and delivered the listed qf items.
// When the recovery reached one of those entries after its delivery had
// removed the qf, it wrote the entry out again, and the message went out twice.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { startSilentHop } from '../helpers/silent-hop';
import { startSink } from '../helpers/sink';
import { isJournalName, readJournal } from '../../src/queue/journal';

const MESSAGES = 100;
/** The last entries of the journal, written out before the kill. */
const WRITTEN = 20;

test('written-out journal entry delivered once', { timeout: 55_000 }, async (t) => {
  const silent = await startSilentHop(t);
  const { ph } = await startPosthornWithDns(t, { mailerPort: silent.port });
  for (let batch = 0; batch < MESSAGES; batch += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => sendToRemote(ph.port, `left ${batch + i}`)));
  }
  // Killed before the 5-second write-out: the items exist only in the journal.
  await ph.kill('SIGKILL');
  const journals = fs.readdirSync(ph.queueDir).filter(isJournalName);
  assert.equal(journals.length, 1, journals.join(' '));
  const { open } = readJournal(fs.readFileSync(path.join(ph.queueDir, journals[0])));
  assert.equal(open.length, MESSAGES);
  // A write-out before its D record leaves df (the body) and qf (the control file).
  for (const entry of open.slice(MESSAGES - WRITTEN)) {
    fs.writeFileSync(path.join(ph.queueDir, `df${entry.id}`), entry.body, { mode: 0o600 });
    fs.writeFileSync(path.join(ph.queueDir, `qf${entry.id}`), entry.control, { mode: 0o600 });
  }

  await silent.close();
  const sink = await startSink({ host: '127.0.0.2', port: silent.port });
  t.after(() => sink.close());
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1] ?? '').sort();
  const want = Array.from({ length: MESSAGES }, (_, i) => `left ${i}`).sort();
  assert.deepEqual(got, want, `${got.length} messages delivered for ${MESSAGES}`);
  assert.deepEqual(ph.queueFiles().filter((n) => !n.startsWith('.')), []);
  assert.deepEqual(journalOpenIds(ph.queueDir), []);
});
