// A commit for immediate delivery takes the item's lock before its qf appears
// and keeps a small body in memory (src/queue/store.ts, CommitOptions). Locks
// are hard links to one pid file per process (src/queue/lock.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QueueStore } from '../../src/queue/store';
import { recoverQueue } from '../../src/queue/recovery';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

async function openStore(dir: string): Promise<QueueStore> {
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
  await store.init();
  return store;
}

async function commitBody(store: QueueStore, id: string, body: Buffer, opts: { lock?: boolean; keepBody?: boolean }) {
  const writer = await store.openDataFile(id);
  await writer.write(body);
  await writer.close();
  const item = { ...sampleItem(id), bodySize: writer.size };
  await store.commit(item, opts);
  return item;
}

test('commit with lock locks before the qf appears', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const other = await openStore(dir);
  const id = store.newId();
  const body = Buffer.from('Subject: now\r\n\r\nkept in memory\r\n');
  const item = await commitBody(store, id, body, { lock: true, keepBody: true });

  assert.equal(store.holdsLock(id), true);
  assert.equal(fs.readFileSync(path.join(dir, `lf${id}`), 'utf8'), `${process.pid}\n`);
  assert.equal(await other.lock(id), false, 'a queue run must not take the item');
  assert.equal(await other.isLocked(id), true);

  assert.deepEqual(await store.read(id), item);
  assert.deepEqual(store.takeBody(id), body);
  assert.deepEqual(fs.readFileSync(store.dataPath(id)), body, 'the df holds the same bytes');

  await store.remove(id);
  assert.equal(store.takeBody(id), undefined);
  assert.deepEqual(fs.readdirSync(dir), [], 'no qf, df, lock or pid file is left');
});

test('body without keepBody or too large comes from df', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);

  const plain = store.newId();
  await commitBody(store, plain, Buffer.from('x\r\n'), { lock: true });
  await store.read(plain);
  assert.equal(store.takeBody(plain), undefined);
  await store.remove(plain);

  const large = store.newId();
  const body = Buffer.alloc(200 * 1024, 'a');
  await commitBody(store, large, body, { lock: true, keepBody: true });
  await store.read(large);
  assert.equal(store.takeBody(large), undefined, 'only a body that fitted in the write buffer is kept');
  assert.equal(fs.statSync(store.dataPath(large)).size, body.length);
  await store.remove(large);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('unlock drops the kept item', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const other = await openStore(dir);
  const id = store.newId();
  const item = await commitBody(store, id, Buffer.from('x\r\n'), { lock: true, keepBody: true });
  await store.unlock(id);

  assert.equal(await other.lock(id), true);
  const changed = { ...item, attempts: 3 };
  await other.update(changed);
  await other.unlock(id);

  assert.equal(await store.lock(id), true);
  assert.equal((await store.read(id)).attempts, 3);
  assert.equal(store.takeBody(id), undefined);
  await store.remove(id);
});

test('remove clears a leftover tf', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const store = await openStore(dir);
  const id = store.newId();
  await commitBody(store, id, Buffer.from('x\r\n'), {});
  fs.writeFileSync(path.join(dir, `tf${id}`), 'half a control file');
  assert.equal(await store.lock(id), true);
  await store.read(id);
  await store.remove(id);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('recovery removes a dead process pid file', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  fs.writeFileSync(path.join(dir, '.lfpid.999999999.1'), '999999999\n');
  fs.writeFileSync(path.join(dir, `.lfpid.${process.pid}.77`), `${process.pid}\n`);
  const report = await recoverQueue(dir, captureLogger().logger, Date.now());
  assert.deepEqual(fs.readdirSync(dir), [`.lfpid.${process.pid}.77`]);
  assert.deepEqual(report.removedTempFiles, []);
});
