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
import * as path from 'node:path';
import { makeMessage, quoteRe, sendRaw, startNextHopDown } from '../helpers/e2e-setup';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';

test('Workers=2: a stranded item is written out again', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '1m');
  if (disk === undefined) return;
  const hop = await startNextHopDown(t, { queueDir: disk.queueDir, args: ['-O', 'Workers=2', '-q1s', '-O', 'MinFreeBlocks=0'] });
  const { ph } = hop;
  await ph.waitForLog(/started 2 workers/);

  // Room for the journal record (about 40 kB), not for df and qf beside it.
  const filler = path.join(disk.mountPoint, 'filler');
  fs.truncateSync(filler, Math.max(0, fillDisk(filler) - 64 * 1024));
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'stranded in a worker', body: `${'y'.repeat(76)}\n`.repeat(500) }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join(' | '));
  await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: failed to write the item out of the commit journal`), 20_000);

  // Space is back and the next hop is up: no restart needed.
  fs.rmSync(filler);
  const sink = await hop.startSink();
  const [got] = await sink.waitForMessages(1, 30_000);
  assert.match(got.data.toString('latin1'), /^Subject: stranded in a worker\r$/m);
});
