// The commit journal (src/queue/journal.ts) and the store's use of it: what is
// on disk after a commit, a delivery, a deferral and a crash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { readJournal } from '../../src/queue/journal';
import { parseControlFile, serializeControlFile } from '../../src/queue/qf';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir, sampleItem } from './helpers';
import { journalOpenIds } from '../helpers/journal';

async function openStore(dir = makeTempDir()) {
  const capture = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'true', logger: capture.logger, journal: true });
  await store.init();
  await store.recovered();
  return { dir, store, capture };
}

/** Receives a small message as a session that delivers at once does. */
async function commitSmall(store: QueueStore, body: string) {
  const id = store.newId();
  const writer = await store.openDataFile(id, { lazy: true });
  await writer.write(Buffer.from(body));
  await writer.close();
  const item = { ...sampleItem(id), bodySize: body.length };
  await store.commit(item, { lock: true, keepBody: true });
  return { id, item };
}

function queueNames(dir: string): string[] {
  // Without journal files and the lock pid file.
  return fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
}

/** Returns a pid that no process has now, that of a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

function record(id: string, control: string, body: string): Buffer {
  const c = Buffer.from(control);
  const b = Buffer.from(body);
  const crc = zlib.crc32(b, zlib.crc32(c)).toString(16);
  return Buffer.concat([Buffer.from(`P ${id} ${c.length} ${b.length} ${crc}\n`), c, b]);
}

test('a journaled commit leaves no df, qf or lock, and reads back whole', async () => {
  const { dir, store } = await openStore();
  const { id, item } = await commitSmall(store, 'Subject: hi\r\n\r\nbody\r\n');
  assert.deepEqual(queueNames(dir), []);
  assert.deepEqual(journalOpenIds(dir), [id]);
  assert.ok(store.holdsLock(id));
  assert.deepEqual(await store.read(id), item);
  assert.equal(store.takeBody(id)?.toString(), 'Subject: hi\r\n\r\nbody\r\n');

  await store.remove(id);
  assert.deepEqual(journalOpenIds(dir), []);
  assert.deepEqual(queueNames(dir), []);
  removeDir(dir);
});

test('update writes a deferred item out', async () => {
  const { dir, store } = await openStore();
  const { id, item } = await commitSmall(store, 'Subject: later\r\n\r\nbody\r\n');
  const read = await store.read(id);
  read.attempts = 1;
  read.recipients[0].state = 'deferred';
  await store.update(read);
  assert.ok(!store.inJournal(id));
  assert.deepEqual(queueNames(dir), [`df${id}`, `lf${id}`, `qf${id}`]);
  assert.equal(fs.readFileSync(path.join(dir, `df${id}`), 'utf8'), 'Subject: later\r\n\r\nbody\r\n');
  assert.equal(parseControlFile(fs.readFileSync(path.join(dir, `qf${id}`), 'utf8'), id).attempts, 1);
  assert.deepEqual(journalOpenIds(dir), []);
  await store.unlock(id);
  assert.deepEqual(queueNames(dir), [`df${id}`, `qf${id}`]);
  assert.equal(item.id, id);
  removeDir(dir);
});

test('unlock without a delivery writes the item out for queue runs', async () => {
  const { dir, store } = await openStore();
  const { id } = await commitSmall(store, 'Subject: unlocked\r\n\r\nx\r\n');
  await store.unlock(id);
  assert.deepEqual(queueNames(dir), [`df${id}`, `qf${id}`]);
  assert.deepEqual(await store.list(), [id]);
  removeDir(dir);
});

test('a large body or a quarantine goes to df and qf as before', async () => {
  const { dir, store } = await openStore();
  const large = store.newId();
  const writer = await store.openDataFile(large, { lazy: true });
  const body = Buffer.alloc(300 * 1024, 'a');
  await writer.write(body);
  await writer.close();
  await store.commit({ ...sampleItem(large), bodySize: body.length }, { lock: true, keepBody: true });
  assert.deepEqual(fs.readFileSync(path.join(dir, `df${large}`)), body);
  assert.ok(fs.existsSync(path.join(dir, `qf${large}`)));

  const held = store.newId();
  const small = await store.openDataFile(held, { lazy: true });
  await small.write(Buffer.from('x\r\n'));
  await small.close();
  await store.commit({ ...sampleItem(held), bodySize: 3, quarantine: 'spam' }, { lock: true, keepBody: true });
  assert.ok(fs.existsSync(path.join(dir, `hf${held}`)));
  assert.equal(fs.readFileSync(path.join(dir, `df${held}`), 'utf8'), 'x\r\n');
  assert.deepEqual(journalOpenIds(dir), []);
  removeDir(dir);
});

test('recovery writes out a dead process entries', async () => {
  const dir = makeTempDir();
  const pid = deadPid();
  const done = sampleItem('6B5AAAAA000001');
  const open = sampleItem('6B5AAAAA000002');
  const data = Buffer.concat([
    record(done.id, serializeControlFile(done), 'done body\r\n'),
    record(open.id, serializeControlFile(open), 'open body\r\n'),
    Buffer.from(`D ${done.id}\n`),
    // Cut short by the crash: never acknowledged.
    record('6B5AAAAA000003', serializeControlFile(sampleItem('6B5AAAAA000003')), 'cut\r\n').subarray(0, 40),
  ]);
  const name = `.jr.${pid}.${Date.now() - 5000}.1`;
  fs.writeFileSync(path.join(dir, name), data);

  const { store, capture } = await openStore(dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${open.id}`, `qf${open.id}`]);
  assert.equal(fs.readFileSync(path.join(dir, `df${open.id}`), 'utf8'), 'open body\r\n');
  assert.deepEqual(await store.read(open.id), open);
  assert.match(capture.lines.join('\n'), new RegExp(`${open.id}: written out from commit journal ${name.replace(/\./g, '\\.')}`));
  assert.match(capture.lines.join('\n'), /ignored 40 bytes after offset \d+, a record cut short by a crash/);
  removeDir(dir);
});

test('recovery leaves the journal of a live process alone', async () => {
  const dir = makeTempDir();
  const item = sampleItem('6B5AAAAA000004');
  // This test's process is alive and keeps the file open, as its owner does.
  const name = `.jr.${process.pid}.${Date.now()}.1`;
  fs.writeFileSync(path.join(dir, name), record(item.id, serializeControlFile(item), 'b\r\n'));
  const fd = fs.openSync(path.join(dir, name), 'r');
  await openStore(dir);
  fs.closeSync(fd);
  assert.deepEqual(fs.readdirSync(dir), [name]);
  removeDir(dir);
});

test('an entry already written out is not written again', async () => {
  const dir = makeTempDir();
  const item = sampleItem('6B5AAAAA000005');
  fs.writeFileSync(path.join(dir, `qf${item.id}`), serializeControlFile({ ...item, attempts: 3 }));
  fs.writeFileSync(path.join(dir, `df${item.id}`), 'kept\r\n');
  fs.writeFileSync(path.join(dir, `.jr.${deadPid()}.${Date.now() - 5000}.1`), record(item.id, serializeControlFile(item), 'old\r\n'));
  const { store } = await openStore(dir);
  assert.equal((await store.read(item.id)).attempts, 3);
  assert.equal(fs.readFileSync(path.join(dir, `df${item.id}`), 'utf8'), 'kept\r\n');
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${item.id}`, `qf${item.id}`]);
  removeDir(dir);
});

test('readJournal stops at a damaged record', () => {
  const a = sampleItem('6B5AAAAA000006');
  const b = sampleItem('6B5AAAAA000007');
  const good = record(a.id, serializeControlFile(a), 'a\r\n');
  const bad = record(b.id, serializeControlFile(b), 'b\r\n');
  bad[bad.length - 2] ^= 1;
  const read = readJournal(Buffer.concat([good, bad, Buffer.from(`D ${a.id}\n`)]));
  assert.deepEqual(read.open.map((e) => e.id), [a.id]);
  assert.equal(read.damagedAt, good.length);
  assert.deepEqual(readJournal(Buffer.from('garbage without a newline')).open, []);
});

test('many commits share few fdatasync calls', async () => {
  const { dir, store } = await openStore();
  const commits = await Promise.all(Array.from({ length: 50 }, (_, i) => commitSmall(store, `Subject: ${i}\r\n\r\nx\r\n`)));
  assert.ok(store.journalSyncs < 50, `${store.journalSyncs} syncs for 50 commits`);
  for (const { id } of commits) await store.remove(id);
  assert.deepEqual(journalOpenIds(dir), []);
  removeDir(dir);
});

test('a lazy create that finds a df leaves it alone', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  fs.writeFileSync(path.join(dir, `df${id}`), 'another item\r\n');
  const writer = await store.openDataFile(id, { lazy: true });
  // 300 KiB: the first full batch creates the file.
  await assert.rejects(async () => {
    for (let i = 0; i < 300; i++) await writer.write(Buffer.alloc(1024, 'z'));
    await writer.close();
  }, { code: 'EEXIST' });
  assert.equal(fs.readFileSync(path.join(dir, `df${id}`), 'utf8'), 'another item\r\n');
  removeDir(dir);
});

test('recovery writes out many entries of a left journal', async () => {
  const dir = makeTempDir();
  const items = Array.from({ length: 30 }, (_, i) => sampleItem(`6B5AAAAB${String(i).padStart(6, '0')}`));
  const data = Buffer.concat(items.map((item) => record(item.id, serializeControlFile(item), `body ${item.id}\r\n`)));
  fs.writeFileSync(path.join(dir, `.jr.${deadPid()}.${Date.now() - 5000}.1`), data);
  const { store } = await openStore(dir);
  assert.equal((await store.list()).length, 30);
  for (const item of items) assert.equal(fs.readFileSync(path.join(dir, `df${item.id}`), 'utf8'), `body ${item.id}\r\n`);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.jr.')), []);
  removeDir(dir);
});

test('a failed journal write-out keeps the journal and the queue repair', async () => {
  const dir = makeTempDir();
  const item = sampleItem('6B5AAAAC000001');
  fs.writeFileSync(path.join(dir, `.jr.${deadPid()}.${Date.now() - 5000}.1`), record(item.id, serializeControlFile(item), 'b\r\n'));
  // A lock left by a gone process, which the queue's own recovery removes.
  fs.writeFileSync(path.join(dir, 'lf6B5AAAAC000002'), `${deadPid()}\n`);
  const capture = captureLogger();
  const failing = async (): Promise<void> => {
    throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
  };
  const store = new QueueStore({ dir, superSafe: 'true', logger: capture.logger, journal: true, sync: failing });
  await store.init();
  await store.recovered();
  assert.match(capture.lines.join('\n'), /commit journal recovery failed: EIO: injected/);
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('.jr.')).length, 1, 'the journal is kept for the next recovery');
  assert.ok(!fs.existsSync(path.join(dir, 'lf6B5AAAAC000002')), 'the queue recovery ran');
  assert.ok(!fs.existsSync(path.join(dir, `qf${item.id}`)));
  removeDir(dir);
});

test('a failed fdatasync moves commits to a new file', async () => {
  const dir = makeTempDir();
  let failNext = false;
  const sync = async (fd: number): Promise<void> => {
    if (failNext) {
      failNext = false;
      throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    }
    fs.fdatasyncSync(fd);
  };
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger, journal: true, sync });
  await store.init();
  await store.recovered();
  const first = await commitSmall(store, 'Subject: one\r\n\r\nx\r\n');
  const before = fs.readdirSync(dir).filter((n) => n.startsWith('.jr.'));
  failNext = true;
  await assert.rejects(commitSmall(store, 'Subject: two\r\n\r\nx\r\n'), { code: 'EIO' });
  const third = await commitSmall(store, 'Subject: three\r\n\r\nx\r\n');
  const after = fs.readdirSync(dir).filter((n) => n.startsWith('.jr.'));
  assert.equal(before.length, 1);
  assert.equal(after.length, 2, after.join(' '));
  assert.deepEqual(journalOpenIds(dir).sort(), [first.id, third.id].sort());
  removeDir(dir);
});

test('a kept journal marks its written-out entries finished', async () => {
  const { dir, store } = await openStore();
  const a = sampleItem('6B5AAAAA000011');
  const b = sampleItem('6B5AAAAA000012');
  // b's lock is held, as by a live process, so the journal is kept.
  assert.ok(await store.lock(b.id));
  const name = `.jr.${deadPid()}.${Date.now() - 5000}.1`;
  const tail = record('6B5AAAAA000013', serializeControlFile(sampleItem('6B5AAAAA000013')), 'cut\r\n').subarray(0, 30);
  fs.writeFileSync(path.join(dir, name), Buffer.concat([record(a.id, serializeControlFile(a), 'a\r\n'), record(b.id, serializeControlFile(b), 'b\r\n'), tail]));

  const first = await store.recoverJournals();
  assert.equal(first.written, 1);
  assert.deepEqual(queueNames(dir), [`df${a.id}`, `lf${b.id}`, `qf${a.id}`]);
  const journals = fs.readdirSync(dir).filter((n) => n.startsWith('.jr.'));
  assert.equal(journals.length, 1);
  const read = readJournal(fs.readFileSync(path.join(dir, journals[0])));
  assert.deepEqual(read.open.map((e) => e.id), [b.id]);
  assert.equal(read.damagedAt, undefined);

  // a is delivered and removed; the next recovery writes out b only.
  fs.rmSync(path.join(dir, `df${a.id}`));
  fs.rmSync(path.join(dir, `qf${a.id}`));
  await store.unlock(b.id);
  const second = await store.recoverJournals();
  assert.equal(second.written, 1);
  assert.deepEqual(queueNames(dir), [`df${b.id}`, `qf${b.id}`]);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.jr.')), []);
  removeDir(dir);
});
