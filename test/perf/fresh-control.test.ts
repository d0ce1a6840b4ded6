// The first read() after commit() returns the item from the text this process just wrote
// (src/queue/store.ts, freshControl), but only while the qf on disk is still
// that file: a rewrite by another process must be seen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

async function openStore(dir: string): Promise<QueueStore> {
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
  await store.init();
  return store;
}

async function commitSample(store: QueueStore, id: string) {
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('Subject: hi\r\n\r\nbody\r\n'));
  await writer.close();
  const item = { ...sampleItem(id), bodySize: writer.size };
  await store.commit(item);
  return item;
}

test('first read after commit equals the item on disk', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const id = store.newId();
  const item = await commitSample(store, id);
  assert.deepEqual(await store.read(id), item);
  assert.deepEqual(await store.read(id), item);
});

test('a qf rewritten by another process after commit is read from disk', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const other = await openStore(dir);
  const id = store.newId();
  const item = await commitSample(store, id);

  // Another process (here a second store) delivers one recipient and rewrites the qf.
  assert.equal(await other.lock(id), true);
  const changed = { ...item, attempts: 1, recipients: item.recipients.slice(1) };
  await other.update(changed);
  await other.unlock(id);

  const read = await store.read(id);
  assert.equal(read.attempts, 1);
  assert.deepEqual(read, changed);
});

test('a qf set aside after commit is not answered from memory', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const id = store.newId();
  await commitSample(store, id);
  fs.renameSync(store.controlPath(id, 'qf'), `${dir}/Qf${id}`);
  await assert.rejects(store.read(id), { code: 'ENOENT' });
});

test('lock files hold the pid and remove() leaves nothing behind', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const id = store.newId();
  await commitSample(store, id);
  assert.equal(await store.lock(id), true);
  assert.equal(fs.readFileSync(`${dir}/lf${id}`, 'utf8'), `${process.pid}\n`);
  // The lock is a hard link to the one pid file of this process, not a temporary file per lock.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')).map((f) => f.replace(/\.\d+$/, '')), [`.lfpid.${process.pid}`]);
  await store.remove(id);
  assert.deepEqual(fs.readdirSync(dir), []);
});
