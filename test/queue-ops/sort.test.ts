// QueueSortOrder and the queue run filters (MinQueueAge, QueueFactor, MaxQueueRunSize).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { QueueStore } from '../../src/queue/store';
import { loadConfig } from '../../src/config/load';
import { queuedForLoad } from '../../src/daemon/services';
import {
  parseQueueSortOrder,
  queueRunIds,
  reversedHost,
  shouldQueue,
  sortWork,
  type QueueRunPolicy,
  type WorkEntry,
} from '../../src/queue/sort';
import type { QueueItem } from '../../src/queue/types';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

function item(id: string, fields: Partial<QueueItem>): QueueItem {
  return { ...sampleItem(id), quarantine: undefined, ...fields };
}

function entry(id: string, fields: Partial<QueueItem>, extra: Partial<WorkEntry> = {}): WorkEntry {
  return { id, item: item(id, fields), ...extra };
}

test('sort order names by first letter', () => {
  assert.equal(parseQueueSortOrder('priority'), 'priority');
  assert.equal(parseQueueSortOrder('Host'), 'host');
  assert.equal(parseQueueSortOrder('f'), 'filename');
  assert.equal(parseQueueSortOrder('TIME'), 'time');
  assert.equal(parseQueueSortOrder('random'), 'random');
  assert.equal(parseQueueSortOrder('mod'), 'modification');
  assert.equal(parseQueueSortOrder('none'), 'none');
  assert.throws(() => parseQueueSortOrder('size'), /^Error: Invalid queue sort order "size"$/);
  assert.throws(() => parseQueueSortOrder(''), /Invalid queue sort order ""/);
});

test('priority order', () => {
  const work = [entry('c', { priority: 300 }), entry('a', { priority: 100 }), entry('b', { priority: 200 }), { id: 'z' }];
  assert.deepEqual(sortWork(work, 'priority').map((e) => e.id), ['a', 'b', 'c', 'z']);
});

test('filename, time and modification orders', () => {
  const work = () => [
    entry('k2', { created: 30 }, { mtimeMs: 1 }),
    entry('k1', { created: 20 }, { mtimeMs: 3 }),
    entry('k3', { created: 10 }, { mtimeMs: 2 }),
  ];
  assert.deepEqual(sortWork(work(), 'filename').map((e) => e.id), ['k1', 'k2', 'k3']);
  assert.deepEqual(sortWork(work(), 'time').map((e) => e.id), ['k3', 'k1', 'k2']);
  assert.deepEqual(sortWork(work(), 'modification').map((e) => e.id), ['k2', 'k3', 'k1']);
  assert.deepEqual(sortWork(work(), 'none').map((e) => e.id), ['k2', 'k1', 'k3']);
});

test('random order uses the random source', () => {
  const ids = ['a', 'b', 'c', 'd'];
  const values = [0.9, 0.1, 0.5, 0.3];
  let i = 0;
  const sorted = sortWork(ids.map((id) => ({ id })), 'random', () => values[i++]);
  assert.deepEqual(sorted.map((e) => e.id), ['b', 'd', 'c', 'a']);
});

test('host order clusters reversed domains', () => {
  const rcpt = (address: string) => [{ address, state: 'pending' as const }];
  assert.equal(reversedHost(item('x', { recipients: rcpt('u@Mail.Example.COM') })), 'moc.elpmaxe.liam');
  const work = [
    entry('1', { recipients: rcpt('u@b.example.org'), priority: 5 }),
    entry('2', { recipients: rcpt('u@example.com'), priority: 9 }),
    entry('3', { recipients: rcpt('u@a.example.org'), priority: 1 }),
    entry('4', { recipients: rcpt('local'), priority: 7 }),
    entry('5', { recipients: rcpt('v@example.com'), priority: 2 }),
  ];
  // No host first, then "gro.elpmaxe.a" < "gro.elpmaxe.b" < "moc.elpmaxe".
  assert.deepEqual(sortWork(work, 'host').map((e) => e.id), ['4', '3', '1', '5', '2']);
});

test('host order puts hosts with a locked item last', () => {
  const rcpt = (address: string) => [{ address, state: 'pending' as const }];
  const work = [
    entry('1', { recipients: rcpt('u@a.example'), priority: 1 }, { locked: true }),
    entry('2', { recipients: rcpt('v@a.example'), priority: 2 }),
    entry('3', { recipients: rcpt('u@z.example'), priority: 3 }),
  ];
  assert.deepEqual(sortWork(work, 'host').map((e) => e.id), ['3', '1', '2']);
});

test('QueueFactor under load', () => {
  assert.equal(shouldQueue(10_000_000, 3, 8, 600000), false, 'below QueueLA nothing waits');
  assert.equal(shouldQueue(300_001, 9, 8, 600000), true, '600000 / (9 - 8 + 1) = 300000');
  assert.equal(shouldQueue(300_000, 9, 8, 600000), false);
});

/** Commits one item per entry of `fields` and returns their ids in the same order. */
async function storeWith(fields: Partial<QueueItem>[]): Promise<{ store: QueueStore; dir: string; ids: string[] }> {
  const dir = makeTempDir();
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init();
  const ids: string[] = [];
  for (const f of fields) {
    const id = store.newId();
    const w = await store.openDataFile(id);
    await w.write(Buffer.from('body\r\n'));
    await w.close();
    await store.commit(item(id, f));
    ids.push(id);
  }
  return { store, dir, ids };
}

const POLICY: QueueRunPolicy = {
  order: 'priority',
  minQueueAgeMs: 0,
  maxRunSize: 0,
  queueFactor: 600000,
  queueLA: 8,
  load: () => 0,
};

test('queue run order, MaxQueueRunSize and MinQueueAge', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const { store, dir, ids } = await storeWith([
    { priority: 500 },
    { priority: 100, lastAttempt: now - 10, attempts: 1 },
    { priority: 300 },
    { priority: 50, quarantine: 'held' },
  ]);
  const [a1, a2, a3, a4] = ids;
  t.after(() => removeDir(dir));

  assert.deepEqual(await queueRunIds(store, POLICY), [a2, a3, a1]);
  assert.deepEqual(await queueRunIds(store, { ...POLICY, maxRunSize: 2 }), [a2, a3]);
  assert.deepEqual(
    await queueRunIds(store, { ...POLICY, minQueueAgeMs: 60_000 }),
    [a3, a1],
    'tried 10 s ago is too young for MinQueueAge=1m',
  );
  assert.deepEqual(await queueRunIds(store, POLICY, { kind: 'hf' }), [a4]);
});

test('QueueFactor drops only high priorities', async (t) => {
  const { store, dir, ids } = await storeWith([{ priority: 400000 }, { priority: 200000 }]);
  const [b1, b2] = ids;
  t.after(() => removeDir(dir));
  assert.deepEqual(await queueRunIds(store, { ...POLICY, load: () => 9 }), [b2]);
  assert.deepEqual(await queueRunIds(store, { ...POLICY, load: () => 7 }), [b2, b1]);
  assert.deepEqual(await queueRunIds(store, { ...POLICY, queueLA: 0, load: () => 50 }), [b2, b1], 'QueueLA=0 is off');
});

test('modification order reads mtimes', async (t) => {
  const { store, dir, ids } = await storeWith([{}, {}]);
  const [c1, c2] = ids;
  t.after(() => removeDir(dir));
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(store.controlPath(c2), old, old);
  assert.deepEqual(await queueRunIds(store, { ...POLICY, order: 'modification' }), [c2, c1]);
});

test('the daemon queues for load as sendmail shouldqueue() does', () => {
  const config = loadConfig({ env: {}, overrides: [{ name: 'QueueLA', value: '8' }] });
  // Below QueueLA everything goes out at once.
  assert.equal(queuedForLoad(config, 10_000_000, 7), false);
  // At QueueLA 8 and load 8: queued above QueueFactor / 1 = 600000.
  assert.equal(queuedForLoad(config, 30_436, 8), false, 'a small message still goes out');
  assert.equal(queuedForLoad(config, 700_000, 8), true);
  // At load 17 the bar is 600000 / 10 = 60000.
  assert.equal(queuedForLoad(config, 30_436, 17), false);
  assert.equal(queuedForLoad(config, 60_001, 17), true);
  // Without a priority every message waits at QueueLA; QueueLA 0 turns it off.
  assert.equal(queuedForLoad(config, undefined, 8), true);
  const off = loadConfig({ env: {}, overrides: [{ name: 'QueueLA', value: '0' }] });
  assert.equal(queuedForLoad(off, 10_000_000, 50), false);
});
