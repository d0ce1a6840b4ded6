// SuperSafe: which files each mode fsyncs, and when, through QueueStore with a
// sync function that records every call; QueueStore.stats must agree.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SuperSafe } from '../../src/config/types';
import { QueueStore } from '../../src/queue/store';
import { defaultSync } from '../../src/queue/group-sync';
import { quarantineQueue } from '../../src/queue/quarantine';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

interface Recorded {
  store: QueueStore;
  dir: string;
  /** File names (df..., tf..., or "dir") in the order they were synced. */
  synced: string[];
}

async function recordingStore(superSafe: SuperSafe): Promise<Recorded> {
  const dir = makeTempDir();
  const synced: string[] = [];
  const store = new QueueStore({
    dir,
    superSafe,
    logger: captureLogger().logger,
    sync: async (fd, file) => {
      synced.push(file === dir ? 'dir' : path.basename(file).slice(0, 2));
      await defaultSync(fd, file);
    },
  });
  await store.init();
  return { store, dir, synced };
}

/** Receives a message as a session does; returns the syncs seen at the final dot and after the commit. */
async function receive(r: Recorded, id: string): Promise<{ atDot: string[]; atCommit: string[] }> {
  const writer = await r.store.openDataFile(id);
  await writer.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  await writer.close();
  const atDot = [...r.synced];
  await r.store.commit({ ...sampleItem(id), quarantine: undefined });
  return { atDot, atCommit: r.synced.slice(atDot.length) };
}

test('SuperSafe=True syncs df, tf and directory at commit', async (t) => {
  const r = await recordingStore('true');
  t.after(() => removeDir(r.dir));
  const { atDot, atCommit } = await receive(r, r.store.newId());
  // The df and tf fsyncs run together in commit(), before the 250 reply.
  assert.deepEqual(atDot, []);
  assert.deepEqual([...atCommit].sort(), ['df', 'dir', 'dir', 'tf']);
  assert.deepEqual(atCommit.slice(-2), ['dir', 'dir'], 'the directory before and after the rename, last');
  assert.deepEqual(r.store.stats, { fileSyncs: 2, dirSyncs: 2 });
});

test('SuperSafe=False syncs nothing', async (t) => {
  const r = await recordingStore('false');
  t.after(() => removeDir(r.dir));
  const id = r.store.newId();
  await receive(r, id);
  const item = await r.store.read(id);
  item.attempts = 1;
  await r.store.update(item);
  assert.deepEqual(r.synced, []);
  assert.deepEqual(r.store.stats, { fileSyncs: 0, dirSyncs: 0 });
});

test('SuperSafe=PostMilter syncs df only at commit', async (t) => {
  const r = await recordingStore('postmilter');
  t.after(() => removeDir(r.dir));
  const { atDot, atCommit } = await receive(r, r.store.newId());
  assert.deepEqual(atDot, [], 'nothing before the milters have accepted');
  assert.deepEqual([...atCommit].sort(), ['df', 'dir', 'dir', 'tf']);
});

test('SuperSafe=PostMilter rejected message syncs nothing', async (t) => {
  const r = await recordingStore('postmilter');
  t.after(() => removeDir(r.dir));
  const id = r.store.newId();
  const writer = await r.store.openDataFile(id);
  await writer.write(Buffer.from('Subject: x\r\n\r\nrejected by a milter\r\n'));
  await writer.close();
  await r.store.abort(id);
  assert.deepEqual(r.synced, []);
  assert.deepEqual(r.store.stats, { fileSyncs: 0, dirSyncs: 0 });
});

test('SuperSafe=Interactive syncs like True', async (t) => {
  // sendmail skips some fsyncs for interactive delivery because it delivers
  // before the 250; Posthorn sends the 250 first, so it keeps True's syncs.
  const r = await recordingStore('interactive');
  t.after(() => removeDir(r.dir));
  const { atDot, atCommit } = await receive(r, r.store.newId());
  assert.deepEqual(atDot, []);
  assert.deepEqual([...atCommit].sort(), ['df', 'dir', 'dir', 'tf']);
});

test('quarantine rewrite syncs unless SuperSafe=False', async (t) => {
  for (const mode of ['true', 'false'] as const) {
    const r = await recordingStore(mode);
    t.after(() => removeDir(r.dir));
    const id = r.store.newId();
    await receive(r, id);
    const before = r.synced.length;
    const result = await quarantineQueue(r.store, captureLogger().logger, {
      reason: 'spam',
      quarantinedItems: false,
      select: () => true,
      verbose: true,
    });
    assert.equal(result.changed, 1);
    assert.deepEqual(result.output, [`Processing ${r.dir}:`, `${id}: Quarantined with "spam"`, '1 change']);
    const rewrite = r.synced.slice(before);
    assert.deepEqual(rewrite, mode === 'true' ? ['tf', 'dir'] : [], `SuperSafe=${mode}`);
  }
});

test('SuperSafe=Interactive with syncLater syncs nothing at commit, then only what is left', async (t) => {
  const r = await recordingStore('interactive');
  t.after(() => removeDir(r.dir));
  const id = r.store.newId();
  const writer = await r.store.openDataFile(id);
  await writer.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  await writer.close();
  await r.store.commit({ ...sampleItem(id), quarantine: undefined }, { syncLater: true });
  assert.deepEqual(r.synced, [], 'the delivery comes first');
  assert.deepEqual(fs.readdirSync(r.dir).filter((n) => n.endsWith(id)).sort(), [`df${id}`, `qf${id}`]);

  // Still queued after the delivery attempt: df and qf together, then the directory.
  await r.store.syncItem(id);
  assert.deepEqual([...r.synced].sort(), ['df', 'dir', 'qf']);
  assert.equal(r.synced.at(-1), 'dir');

  // Delivered and removed: nothing left to sync.
  const gone = r.store.newId();
  const w2 = await r.store.openDataFile(gone);
  await w2.close();
  await r.store.commit({ ...sampleItem(gone), quarantine: undefined }, { syncLater: true });
  await r.store.remove(gone);
  const before = r.synced.length;
  await r.store.syncItem(gone);
  assert.equal(r.synced.length, before);
});

test('SuperSafe=Interactive without syncLater syncs as True', async (t) => {
  const r = await recordingStore('interactive');
  t.after(() => removeDir(r.dir));
  const { atCommit } = await receive(r, r.store.newId());
  assert.deepEqual([...atCommit].sort(), ['df', 'dir', 'dir', 'tf']);
});
