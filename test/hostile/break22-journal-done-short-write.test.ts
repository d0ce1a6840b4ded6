// A full disk, made with a small tmpfs mounted for this test (root only, and
// skipped elsewhere). A left journal contains items A and B, and a live
// process has B's lock. So the recovery writes out A only, keeps the journal
// and appends "D <A>" (markJournalDone). The disk fills up once A is written
// out (the test fills it at the log line of the write-out), and the journal
// ends 5 bytes before a page boundary. The append then writes 5 bytes only.
// FileHandle.write() reports that as a short write, not as an error, and
// markJournalDone() ignored the count, so nothing was logged.
// A was then delivered, the disk got room again and B's lock was removed. The
// next recovery read the journal up to the cut record ("ignored 5 bytes ...,
// a record cut short by a crash"). It found A open without a qf and wrote it
// out again, so A was delivered twice. The fix undoes A's write-out when its
// D record cannot be written, so A is delivered once either way.
//
// The same short write happened end to end: a daemon killed with 2,500 items
// in its journal, a tmpfs with room for about 700 of them, and the daemon
// started again with -q3s. Its kept journal ended at a page boundary in
// "D 6B5Bq", with 1,819 entries open, and the log had no "failed to mark" line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Logger, type LogSink } from '../../src/log/logger';
import { LockFiles } from '../../src/queue/lock';
import { serializeControlFile } from '../../src/queue/qf';
import { QueueStore } from '../../src/queue/store';
import { fillDisk, mountQueueDisk } from '../helpers/queue-disk';
import { sampleItem } from '../queue/helpers';

/** Builds the journal record of item `id`: the P line, a control file and `body`. */
function putRecord(id: string, body: Buffer): Buffer {
  const control = Buffer.from(serializeControlFile(sampleItem(id)));
  const crc = zlib.crc32(body, zlib.crc32(control)).toString(16);
  return Buffer.concat([Buffer.from(`P ${id} ${control.length} ${body.length} ${crc}\n`), control, body]);
}

test('journal D records cut short', { timeout: 30_000 }, async (t) => {
  const disk = mountQueueDisk(t, '1m');
  if (disk === undefined) return;
  const dir = disk.queueDir;
  const filler = path.join(disk.mountPoint, 'filler');
  const lines: string[] = [];
  let full = false;
  const sink: LogSink = {
    write(_severity, line) {
      lines.push(line);
      // The disk is full from the end of the first write-out.
      if (!full && / written out from commit journal /.test(line)) {
        full = true;
        fillDisk(filler);
      }
    },
    close() {},
  };
  const store = new QueueStore({ dir, superSafe: 'true', logger: new Logger([sink]) });
  await store.init({ recover: false });
  // Another lock of this process keeps its pid file, so the unlock after the
  // write-out frees no page before the D records are appended.
  const other = new LockFiles(dir);
  assert.ok(await other.lock('other'));
  t.after(() => other.unlock('other'));

  const [a, b, c] = [store.newId(), store.newId(), store.newId()];
  const recordA = putRecord(a, Buffer.from('Subject: a\r\n\r\na\r\n'));
  // C was written out before the crash and tried since: its qf must survive.
  const recordC = putRecord(c, Buffer.from('Subject: c\r\n\r\nc\r\n'));
  const triedC = serializeControlFile({ ...sampleItem(c), attempts: 2 });
  fs.writeFileSync(path.join(dir, `qf${c}`), triedC);
  fs.writeFileSync(path.join(dir, `df${c}`), 'Subject: c\r\n\r\nc\r\n');
  let journal = Buffer.alloc(0);
  for (let size = 16; journal.length % 4096 !== 4096 - 5; size++) {
    journal = Buffer.concat([recordA, recordC, putRecord(b, Buffer.alloc(size, 0x62))]);
  }
  // The pid of a child that has exited, as the journal's owner.
  const exited = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const deadPid = Number(exited.stdout.trim());
  fs.writeFileSync(path.join(dir, `.jr.${deadPid}.${Date.now() - 10_000}.1`), journal);
  // B's lock names a live process, the test runner that started this file.
  fs.writeFileSync(path.join(dir, `lf${b}`), `${process.ppid}\n`);

  assert.equal((await store.recoverJournals()).written, 1);
  // A queue run delivers A if it is queued now: the delivery takes its lock
  // and removes its files. Across both recoveries A must go out exactly once.
  let deliveries = 0;
  if (fs.existsSync(path.join(dir, `qf${a}`))) {
    deliveries += 1;
    assert.ok(await store.lock(a));
    await store.remove(a);
  }
  fs.rmSync(filler);
  fs.rmSync(path.join(dir, `lf${b}`));

  await store.recoverJournals();
  if (fs.existsSync(path.join(dir, `qf${a}`))) deliveries += 1;
  assert.equal(deliveries, 1, lines.join('\n'));
  assert.equal(fs.readFileSync(path.join(dir, `qf${c}`), 'utf8'), triedC);
});
