// A full disk, made with a small tmpfs mounted for this test (root only, and
// skipped elsewhere). A killed daemon left 20 items in its commit journal.
// When the recovery cannot write out every entry, it keeps the journal file
// (under its claimed name). It used to keep all its entries open, also those
// it did write out, so once a queue run had delivered those and removed their
// qf, the next recovery wrote them out again and they went out twice. The run
// after the disk has room again must leave every message delivered once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { journalOpenIds } from '../helpers/journal';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';
import { leaveJournal } from '../helpers/left-journal';

const MESSAGES = 20;

test('kept journal delivers nothing twice', { timeout: 55_000 }, async (t) => {
  const disk = mountQueueDisk(t, '2m');
  if (disk === undefined) return;
  const { ph, sink } = await leaveJournal(t, MESSAGES, { queueDir: disk.queueDir, args: ['-O', 'MinFreeBlocks=0'] });

  // Two runs while the disk has room for a few items only, then one after.
  const filler = path.join(disk.mountPoint, 'filler');
  fs.truncateSync(filler, Math.max(0, fillDisk(filler) - 40 * 1024));
  for (const args of [['-q', '-O', 'MinFreeBlocks=0'], ['-q', '-O', 'MinFreeBlocks=0']]) {
    const run = await ph.run(args);
    assert.equal(run.code, 0, run.stderr);
  }
  assert.ok(sink.messages.length > 0, 'nothing delivered while the disk was full');
  fs.rmSync(filler);
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  const got = sink.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1] ?? '').sort();
  assert.deepEqual(got, Array.from({ length: MESSAGES }, (_, i) => `left ${i}`).sort(), `${got.length} messages delivered for ${MESSAGES}`);
  assert.deepEqual(ph.queueFiles().filter((n) => !n.startsWith('.')), []);
  assert.deepEqual(journalOpenIds(disk.queueDir), []);
});
