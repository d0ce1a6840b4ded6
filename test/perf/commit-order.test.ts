// The queue commit overlaps the df and tf fsyncs (one wait for the disk instead
// of two). These tests hold the fsyncs back and check that the qf still only
// appears once both files and the directory are on stable storage, and that a
// failed df fsync leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SyncFunction } from '../../src/queue/group-sync';
import { QueueStore } from '../../src/queue/store';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

interface Held {
  path: string;
  release(err?: Error): void;
}

/** A sync function that parks every fsync until the test releases it. */
function heldSyncs(): { sync: SyncFunction; held: Held[]; waitFor(n: number): Promise<void> } {
  const held: Held[] = [];
  const sync: SyncFunction = (_handle, file) =>
    new Promise<void>((resolve, reject) => {
      held.push({ path: file, release: (err) => (err ? reject(err) : resolve()) });
    });
  const waitFor = async (n: number): Promise<void> => {
    for (let i = 0; i < 2000 && held.length < n; i++) await new Promise((r) => setTimeout(r, 1));
    assert.ok(held.length >= n, `expected ${n} pending fsyncs, saw ${held.length}`);
  };
  return { sync, held, waitFor };
}

async function writeData(store: QueueStore, id: string): Promise<void> {
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('Subject: order\r\n\r\nbody\r\n'));
  await writer.close();
}

test('df and tf fsyncs run together and the qf waits for both', async () => {
  const dir = makeTempDir();
  const { sync, held, waitFor } = heldSyncs();
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger, sync });
  await store.init();
  const id = store.newId();
  await writeData(store, id);
  assert.equal(held.length, 0, 'closing the df does not fsync it; commit() does');

  let committed = false;
  const commit = store.commit(sampleItem(id)).then(() => {
    committed = true;
  });
  await waitFor(2);
  const names = held.map((h) => path.basename(h.path)).sort();
  assert.deepEqual(names, [`df${id}`, `tf${id}`], 'both file fsyncs are in flight at once');

  // Release the tf first: the qf must still not appear while the df is unsynced.
  held.find((h) => h.path.endsWith(`tf${id}`))!.release();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(held.length, 2, 'no directory fsync before the df is durable');
  assert.ok(!fs.existsSync(path.join(dir, `qf${id}`)));

  held.find((h) => h.path.endsWith(`df${id}`))!.release();
  await waitFor(3);
  assert.equal(held[2].path, dir, 'then the directory, before the rename');
  assert.ok(!fs.existsSync(path.join(dir, `qf${id}`)));
  held[2].release();
  await waitFor(4);
  assert.equal(held[3].path, dir, 'and the directory again after the rename');
  assert.ok(fs.existsSync(path.join(dir, `qf${id}`)));
  assert.equal(committed, false, 'commit() resolves only after the last directory fsync');
  held[3].release();
  await commit;
  assert.deepEqual(store.stats, { dirSyncs: 2, fileSyncs: 2 });
  removeDir(dir);
});

test('a failed df fsync fails the commit and removes the item', async () => {
  const dir = makeTempDir();
  const { sync, held, waitFor } = heldSyncs();
  const store = new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger, sync });
  await store.init();
  const id = store.newId();
  await writeData(store, id);

  const commit = store.commit(sampleItem(id));
  await waitFor(2);
  held.find((h) => h.path.endsWith(`tf${id}`))!.release();
  const eio: NodeJS.ErrnoException = Object.assign(new Error('EIO: injected'), { code: 'EIO' });
  held.find((h) => h.path.endsWith(`df${id}`))!.release(eio);
  await assert.rejects(commit, (err: NodeJS.ErrnoException) => err.code === 'EIO');
  assert.deepEqual(fs.readdirSync(dir), [], 'no df, tf or qf is left');
  removeDir(dir);
});

test('SuperSafe=False still never fsyncs', async () => {
  const dir = makeTempDir();
  const { sync, held } = heldSyncs();
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger, sync });
  await store.init();
  const id = store.newId();
  await writeData(store, id);
  await store.commit(sampleItem(id));
  assert.equal(held.length, 0);
  assert.ok(fs.existsSync(path.join(dir, `qf${id}`)));
  removeDir(dir);
});
