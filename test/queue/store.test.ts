import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSync, SyncFunction } from '../../src/queue/group-sync';
import { QueueStore } from '../../src/queue/store';
import { SuperSafe } from '../../src/config/types';
import { captureLogger, makeTempDir, removeDir, sampleItem } from './helpers';

async function openStore(superSafe: SuperSafe = 'true', sync?: SyncFunction) {
  const dir = makeTempDir();
  const store = new QueueStore({ dir, superSafe, logger: captureLogger().logger, sync });
  await store.init();
  return { dir, store };
}

/** Writes a df the way a session does and returns its bytes. */
async function writeData(store: QueueStore, id: string, chunks: Buffer[]): Promise<Buffer> {
  const writer = await store.openDataFile(id);
  for (const chunk of chunks) await writer.write(chunk);
  assert.equal(writer.size, chunks.reduce((n, c) => n + c.length, 0));
  await writer.close();
  return Buffer.concat(chunks);
}

function ioError(code: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: injected failure`);
  err.code = code;
  return err;
}

test('store commits and reads an item', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  const big = Buffer.alloc(200 * 1024, 'x');
  const chunks = [Buffer.from('Subject: hi\r\n\r\n'), big, Buffer.from('bye\r\n')];
  const data = await writeData(store, id, chunks);

  const item = { ...sampleItem(id), bodySize: data.length };
  await store.commit(item);

  assert.deepEqual(fs.readFileSync(store.dataPath(id)), data);
  assert.deepEqual(await store.read(id), item);
  assert.deepEqual(await store.list(), [id]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${id}`, `qf${id}`]);
  removeDir(dir);
});

test('store write without await keeps order', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  const writer = await store.openDataFile(id);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 2000; i++) pending.push(writer.write(Buffer.from(`line ${i}\r\n`)));
  pending.push(writer.write(Buffer.alloc(70 * 1024, 'y')));
  await Promise.all(pending);
  await writer.close();

  const expected = Array.from({ length: 2000 }, (_, i) => `line ${i}\r\n`).join('') + 'y'.repeat(70 * 1024);
  assert.equal(fs.readFileSync(store.dataPath(id), 'latin1'), expected);
  removeDir(dir);
});

test('store syncs files and directory', async () => {
  const { dir, store } = await openStore('true');
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await store.commit(sampleItem(id));
  assert.equal(store.stats.fileSyncs, 2, 'df and tf');
  assert.equal(store.stats.dirSyncs, 2, 'before and after the rename');
  removeDir(dir);
});

test('store with SuperSafe false never syncs', async () => {
  const { dir, store } = await openStore('false');
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await store.commit(sampleItem(id));
  await store.update({ ...sampleItem(id), attempts: 1 });
  assert.deepEqual(store.stats, { dirSyncs: 0, fileSyncs: 0 });
  assert.equal((await store.read(id)).attempts, 1);
  removeDir(dir);
});

test('store with PostMilter syncs df at commit', async () => {
  const { dir, store } = await openStore('postmilter');
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  assert.equal(store.stats.fileSyncs, 0);
  await store.commit(sampleItem(id));
  assert.equal(store.stats.fileSyncs, 2);
  removeDir(dir);
});

test('store group commit shares directory syncs', async () => {
  const { dir, store } = await openStore('true');
  const sessions = Array.from({ length: 50 }, async () => {
    const id = store.newId();
    await writeData(store, id, [Buffer.from(`message for ${id}\r\n`)]);
    await store.commit(sampleItem(id));
    return id;
  });
  const ids = await Promise.all(sessions);

  assert.equal(new Set(ids).size, 50);
  assert.ok(store.stats.dirSyncs > 0);
  assert.ok(store.stats.dirSyncs < 50, `${store.stats.dirSyncs} directory syncs`);
  assert.deepEqual((await store.list()).sort(), [...ids].sort());
  for (const id of ids) assert.equal((await store.read(id)).id, id);
  removeDir(dir);
});

test('store update rewrites atomically', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await store.commit(sampleItem(id));

  const updated = sampleItem(id);
  updated.recipients[0].state = 'sent';
  updated.attempts = 1;
  await store.update(updated);
  assert.deepEqual(await store.read(id), updated);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${id}`, `qf${id}`]);
  removeDir(dir);
});

test('store quarantine moves qf to hf', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await store.commit(sampleItem(id));

  await store.update({ ...sampleItem(id), quarantine: 'suspicious attachment' });
  assert.deepEqual(await store.list('qf'), []);
  assert.deepEqual(await store.list('hf'), [id]);
  assert.equal((await store.read(id)).quarantine, 'suspicious attachment');

  await store.update(sampleItem(id));
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${id}`, `qf${id}`]);
  removeDir(dir);
});

test('store remove and abort delete files', async () => {
  const { dir, store } = await openStore();
  const done = store.newId();
  await writeData(store, done, [Buffer.from('x')]);
  await store.commit(sampleItem(done));
  assert.equal(await store.lock(done), true);
  await store.remove(done);

  const failed = store.newId();
  const writer = await store.openDataFile(failed);
  await writer.write(Buffer.from('partial'));
  await store.abort(failed);

  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(dir);
});

test('store commit failure leaves nothing', async () => {
  for (const failing of ['tf', 'dir']) {
    let queueDir = '';
    const sync: SyncFunction = async (fd, file) => {
      const name = path.basename(file);
      // The queue directory's own name is random, so compare whole paths.
      if ((failing === 'tf' && name.startsWith('tf')) || (failing === 'dir' && path.resolve(file) === queueDir)) {
        throw ioError('EIO');
      }
      await defaultSync(fd, file);
    };
    const { dir, store } = await openStore('true', sync);
    queueDir = path.resolve(dir);
    const id = store.newId();
    await writeData(store, id, [Buffer.from('x')]);

    await assert.rejects(store.commit(sampleItem(id)), { code: 'EIO' });
    assert.deepEqual(fs.readdirSync(dir), [], `failing ${failing} sync`);
    removeDir(dir);
  }
});

test('store data file sync failure keeps code', async () => {
  const sync: SyncFunction = async () => {
    throw ioError('ENOSPC');
  };
  const { dir, store } = await openStore('true', sync);
  const id = store.newId();
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('x'));
  // close() only writes; commit() fsyncs the df (overlapped with the tf) and
  // marks the error as the data file's.
  await writer.close();
  await assert.rejects(store.commit(sampleItem(id)), { code: 'ENOSPC', queueFile: 'data' });
  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(dir);
});

test('store update failure keeps old control file', async () => {
  let failTf = false;
  const sync: SyncFunction = async (fd, file) => {
    if (failTf && path.basename(file).startsWith('tf')) throw ioError('EROFS');
    await defaultSync(fd, file);
  };
  const { dir, store } = await openStore('true', sync);
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await store.commit(sampleItem(id));

  failTf = true;
  await assert.rejects(store.update({ ...sampleItem(id), attempts: 7 }), { code: 'EROFS' });
  assert.deepEqual(await store.read(id), sampleItem(id));
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${id}`, `qf${id}`]);
  removeDir(dir);
});

test('store openDataFile refuses existing df', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  await writeData(store, id, [Buffer.from('x')]);
  await assert.rejects(store.openDataFile(id), { code: 'EEXIST' });
  assert.notEqual(store.newId(), id);
  removeDir(dir);
});

test('store commit without df fails', async () => {
  const { dir, store } = await openStore();
  const id = store.newId();
  await assert.rejects(store.commit(sampleItem(id)), { code: 'ENOENT' });
  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(dir);
});
