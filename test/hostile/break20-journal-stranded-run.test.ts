// A full disk, made with a small tmpfs mounted for this test (root only, and
// skipped elsewhere). A message in the daemon's commit journal is deferred,
// and its write-out as df and qf fails for want of space, so the item is
// stranded. The next queue run retries that write-out (store.ts,
// retryStranded), and the run must deliver the item. A version of the queue
// run that listed the folder before that retry missed the qf it wrote: ETRN
// reported 0 items, and this daemon, without periodic runs, kept the message
// until someone ran the queue by hand.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { rawSmtp } from '../helpers/clients';
import { startNextHopDown } from '../helpers/e2e-setup';
import { strandInJournal } from '../helpers/left-journal';
import { mountQueueDisk } from '../helpers/queue-disk';

test('stranded item delivered by its run', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '1m');
  if (disk === undefined) return;
  // LogLevel 10 logs the end of each ETRN run with its count.
  const hop = await startNextHopDown(t, { queueDir: disk.queueDir, args: ['-O', 'MinFreeBlocks=0', '-O', 'LogLevel=10'] });
  const { ph } = hop;

  const filler = await strandInJournal(ph, disk.mountPoint, 'stranded');

  // Space is back and the next hop is up. ETRN runs the queue.
  fs.rmSync(filler);
  const sink = await hop.startSink();
  const replies = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN remote.example', 'QUIT']);
  assert.equal(replies[2], '250 2.0.0 Queuing for node remote.example started');
  const [ended] = await ph.waitForLog(/queue run for ETRN remote\.example ended, \d+ item\(s\) scheduled/);
  assert.match(ended, /ended, 1 item\(s\) scheduled/, ph.logs());
  assert.equal(sink.messages.length, 1, ph.logs());
  assert.match(sink.messages[0].data.toString('latin1'), /^Subject: stranded\r$/m);
});
