// A full disk, made with a small tmpfs mounted for this test (root only, and
// skipped elsewhere). A killed daemon left 20 items in its commit journal, and
// the disk has room for only a few of them as df and qf. The recovery of
// `posthorn -q` writes out what fits and then fails with ENOSPC. The items it
// wrote out must be delivered by the same run. A version of the queue run
// that ran the recovery beside the run dropped the whole list of items
// written out on such a failure, so they stayed queued after the run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe } from '../helpers/e2e-setup';
import { isJournalName } from '../../src/queue/journal';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';
import { leaveJournal } from '../helpers/left-journal';

const MESSAGES = 20;

test('written-out items delivered despite recovery failure', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '2m');
  if (disk === undefined) return;
  const { ph } = await leaveJournal(t, MESSAGES, { queueDir: disk.queueDir, args: ['-O', 'MinFreeBlocks=0'] });
  const journals = fs.readdirSync(disk.queueDir).filter(isJournalName);
  assert.equal(journals.length, 1, journals.join(' '));

  // Room for a few items as df and qf, not for all of them.
  const filler = path.join(disk.mountPoint, 'filler');
  fs.truncateSync(filler, Math.max(0, fillDisk(filler) - 40 * 1024));
  const run = await ph.run(['-q', '-O', 'MinFreeBlocks=0']);
  assert.equal(run.code, 0, run.stderr);
  const logs = ph.logs();
  assert.match(logs, /commit journal recovery failed: ENOSPC/);
  // Only the run's own recovery logs the journal's name as the killed daemon
  // left it. A later recovery in the same process logs the name it claimed.
  const written = [...logs.matchAll(new RegExp(`(\\S+): written out from commit journal ${quoteRe(journals[0])}$`, 'gm'))].map((m) => m[1]);
  assert.ok(written.length > 0, logs);
  assert.ok(written.length < MESSAGES, logs);
  for (const id of written) assert.match(logs, new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`), `${id} was written out and not delivered`);
});
