// A full disk when a message in the commit journal has been in delivery for
// 5 s (the background write-out of a lingering item, store.ts). The queue sits
// on a small tmpfs mounted for this test (root only; skipped elsewhere).
//
// The write-out fails and the item is left for the next queue run of the
// daemon (here one that ETRN starts, which runs beside deliveries). That run
// wrote the item out and then released its lock, while its first delivery
// was still waiting for the next hop's reply to the final dot. A
// `posthorn -q` then found an unlocked qf and delivered the message a second
// time. Now the queue run writes it out and keeps the lock for the delivery
// in flight, which removes the item when it ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quoteRe, sendToRemote, startSinkHop } from '../helpers/e2e-setup';
import { journalOpenIds } from '../helpers/journal';
import { mountQueueDisk } from '../helpers/queue-disk';
import { rawSmtp } from '../helpers/clients';
import { waitFor } from '../helpers/process';

/** Fills the file system of `file` until a write fails. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
}

test('stranded lingering item keeps its lock', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '1m');
  if (disk === undefined) return;
  // The sink replies to the first message's final dot after 14 s, to later ones at once.
  let dots = 0;
  const { ph, sink } = await startSinkHop(t, {
    queueDir: disk.queueDir,
    args: ['-O', 'MinFreeBlocks=0'],
    sink: { dotDelayMs: () => (++dots === 1 ? 14_000 : 0) },
  });
  const id = await sendToRemote(ph.port, 'slow and stranded');
  await sink.waitForMessages(1, 10_000);
  const filler = path.join(disk.mountPoint, 'filler');
  fill(filler);
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: failed to write the item out of the commit journal`), 15_000);
  fs.rmSync(filler);

  // The next queue run writes the item out; the delivery still runs, so the item stays locked.
  const etrn = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN remote.example', 'QUIT']);
  assert.match(etrn[2] ?? '', /^250 /, etrn.join(' | '));
  await waitFor('the item written out', () => fs.existsSync(path.join(ph.queueDir, `qf${id}`)), 10_000);
  await waitFor('the journal entry finished', () => journalOpenIds(ph.queueDir).length === 0, 5_000);
  const locked = fs.existsSync(path.join(ph.queueDir, `lf${id}`));
  const files = ph.queueFiles().join(' ');
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);
  await waitFor('the item removed', () => !ph.queueFiles().some((n) => n.endsWith(id)), 10_000);
  assert.equal(sink.messages.length, 1, `delivered ${sink.messages.length} times`);
  assert.ok(locked, `no lock on ${id} while it was delivered: ${files}`);
});
