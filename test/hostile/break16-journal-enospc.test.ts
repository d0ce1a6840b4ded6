// A full queue disk with the commit journal. The queue sits on a small tmpfs
// mounted for this test (root only; skipped elsewhere, failed in CI).
//
// - A journal write that runs out of space gives 452, not 250.
// - A message in the journal whose first delivery is deferred must be written
//   out as df and qf. When that fails for want of space, it stayed in the
//   daemon's memory and journal "until the next start": the daemon's own
//   queue runs never tried again, so the message waited for a restart. Now
//   the next queue run writes it out and delivers it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeMessage, sendRaw, startNextHopDown } from '../helpers/e2e-setup';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';

test('full disk: journal 452, write-out retried', { timeout: 55_000 }, async (t) => {
  const mountPoint = mountQueueDisk(t, '1m')?.mountPoint;
  if (mountPoint === undefined) return;
  const queueDir = path.join(mountPoint, 'mqueue');
  const hop = await startNextHopDown(t, { queueDir, args: ['-q1s', '-O', 'MinFreeBlocks=0'] });
  const { ph } = hop;
  const send = (subject: string) =>
    sendRaw({
      port: ph.port,
      from: 'alice@posthorn.test',
      to: ['bob@remote.example'],
      data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body: `${subject}\n${'y'.repeat(76)}\n`.repeat(500) }),
    });

  const filler = path.join(mountPoint, 'filler');
  const filled = fillDisk(filler);
  const full = await send('disk full');
  assert.match(full.accepted, /^452 4\.3\.1 /, full.replies.join(' | '));

  // Room for the journal record (about 40 kB), not for df and qf beside it.
  fs.truncateSync(filler, filled - 64 * 1024);
  const sent = await send('stranded');
  assert.notEqual(sent.queueId, '', sent.replies.join(' | '));
  await ph.waitForLog(new RegExp(`${sent.queueId}: failed to write the item out of the commit journal`), 20_000);

  // Space is back and the next hop is up: no restart needed.
  fs.rmSync(filler);
  const sink = await hop.startSink();
  const [got] = await sink.waitForMessages(1, 20_000);
  assert.match(got.data.toString('latin1'), /^Subject: stranded\r$/m);
  await ph.stop();
});
