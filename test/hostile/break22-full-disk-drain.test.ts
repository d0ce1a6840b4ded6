// A full disk, made with a small tmpfs mounted for this test (root only, and
// skipped elsewhere). Five items wait in the queue, then the disk is filled to
// the last page. A queue run delivers none of them, and each delivery logs
// "delivery failed: ENOSPC: no space left on device, write". An item's lock
// is a hard link to a pid file (src/queue/lock.ts), which the process writes
// when it takes its first lock, and that write needs a free page. Each try
// also leaves an empty .lfpid.<pid>.<n> file behind. Only deliveries would
// free space, so the queue cannot drain by itself. The full-disk runs with
// kept journals showed the same failures. sendmail's readqf() locks the qf it
// has open (lockfile() with LOCK_EX|LOCK_NB) and writes nothing for that, so
// its queue runs still deliver at a full disk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { sendToRemote, startPosthornWithDns } from '../helpers/e2e-setup';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';
import { startSink } from '../helpers/sink';
import { freePortOn } from '../helpers/process';

const MESSAGES = 5;

// A known gap (docs/queue-operations.md), so the test is marked todo: it runs
// and reports, but its failure does not fail the suite.
test('queue run at a full disk', { timeout: 60_000, todo: 'a lock needs a pid file, which a full disk cannot take' }, async (t) => {
  const disk = mountQueueDisk(t, '2m');
  if (disk === undefined) return;
  const port = await freePortOn(['127.0.0.2']);
  const { ph } = await startPosthornWithDns(t, {
    mailerPort: port,
    queueDir: disk.queueDir,
    args: ['-O', 'MinFreeBlocks=0', '-O', 'DeliveryMode=queueonly'],
  });
  for (let i = 0; i < MESSAGES; i++) await sendToRemote(ph.port, `queued ${i}`);
  await ph.kill('SIGTERM');
  const sink = await startSink({ host: '127.0.0.2', port });
  t.after(() => sink.close());

  fillDisk(path.join(disk.mountPoint, 'filler'));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const failures = ph.logs().match(/delivery failed: ENOSPC/g) ?? [];
  assert.equal(sink.messages.length, MESSAGES, `${failures.length} deliveries failed with ENOSPC`);
  assert.deepEqual(ph.queueFiles().filter((name) => !name.startsWith('.lfpid.')), []);
});
