// Workers=2 and a full queue disk (a small tmpfs mounted for this test, root
// only, skipped elsewhere). A worker commits a message to its journal. The
// first delivery is deferred, and writing the item out as df and qf fails
// for want of space. The item then waited in the worker for "the next queue
// run". Workers run none, and the primary's runs leave a live worker's
// journal alone, so the message stayed until the worker was restarted. Now
// the worker retries the write-out by itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startNextHopDown } from '../helpers/e2e-setup';
import { strandInJournal } from '../helpers/left-journal';
import { mountQueueDisk } from '../helpers/queue-disk';

test('Workers=2: a stranded item is written out again', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '1m');
  if (disk === undefined) return;
  const hop = await startNextHopDown(t, { queueDir: disk.queueDir, args: ['-O', 'Workers=2', '-q1s', '-O', 'MinFreeBlocks=0'] });
  const { ph } = hop;
  await ph.waitForLog(/started 2 workers/);

  const filler = await strandInJournal(ph, disk.mountPoint, 'stranded in a worker');

  // Space is back and the next hop is up: no restart needed.
  fs.rmSync(filler);
  const sink = await hop.startSink();
  const [got] = await sink.waitForMessages(1, 30_000);
  assert.match(got.data.toString('latin1'), /^Subject: stranded in a worker\r$/m);
});
