// The sort key cache of deep queues: it gives the same keys as reading every
// head, an item changed since the cache was written is read again, and a
// damaged or planted cache is ignored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { serializeControlFile } from '../../src/queue/qf';
import { QueueStore } from '../../src/queue/store';
import { collectSortKeys, HeadState, SortKeys, sortCacheWritten } from '../../src/queue/sort-keys';
import { CACHE_FIELDS, loadSortCache, sortCachePath, writeSortCache } from '../../src/queue/sort-cache';
import { recoverQueue } from '../../src/queue/recovery';
import type { QueueItem } from '../../src/queue/types';
import { captureLogger, makeTempDir, removeDir, sampleItem } from './helpers';

const KEY_ARRAYS = ['state', 'priority', 'created', 'lastAttempt', 'attempts', 'quarantined'] as const;

/** Builds a queue of `n` items with distinct priorities, the fifth with a damaged control file. */
async function smallQueue(dir: string, n = 40): Promise<{ store: QueueStore; items: QueueItem[] }> {
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init({ recover: false });
  const items: QueueItem[] = [];
  for (let i = 0; i < n; i++) {
    const item: QueueItem = {
      ...sampleItem(store.newId()),
      priority: ((i * 7919) % 97) * 1000 - 20000,
      created: 1_700_000_000 + i,
      attempts: i % 4,
      lastAttempt: i % 3 === 0 ? 1_700_000_500 : 0,
      quarantine: i % 11 === 3 ? 'held' : undefined,
    };
    fs.writeFileSync(path.join(dir, `df${item.id}`), 'Subject: x\r\n\r\nbody\r\n');
    fs.writeFileSync(path.join(dir, `qf${item.id}`), i === 4 ? 'V8\nnot a control file\n' : serializeControlFile(item));
    items.push(item);
  }
  return { store, items };
}

function sameKeys(actual: SortKeys, expected: SortKeys, label: string): void {
  for (const name of KEY_ARRAYS) assert.deepEqual(Array.from(actual[name]), Array.from(expected[name]), `${label}: ${name}`);
}

/** Waits until the cache file exists and has `count` items. */
async function cacheWithItems(dir: string, count: number): Promise<void> {
  for (let tries = 0; tries < 500; tries++) {
    if (loadSortCache(dir, 'qf')?.index.size === count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`no cache of ${count} items in ${dir}`);
}

const uncached = { cacheFrom: Infinity, parallelFrom: Infinity };
/** The cache checked by an lstat() of each file. */
const cached = { cacheFrom: 2, parallelFrom: Infinity, folderInodes: false };
/** The cache checked by the folder's inode numbers. */
const byInodes = { cacheFrom: 2, parallelFrom: Infinity };

test('keys from the cache equal the keys read from every head', async () => {
  const dir = makeTempDir();
  const { store } = await smallQueue(dir);
  const ids = await store.list();
  const reference = await collectSortKeys(dir, 'qf', ids, uncached);
  assert.equal(fs.existsSync(sortCachePath(dir, 'qf')), false, 'no cache below cacheFrom');

  const first = await collectSortKeys(dir, 'qf', ids, cached);
  sameKeys(first, reference, 'first run');
  // The damaged item has no good keys, so it is not in the cache.
  await cacheWithItems(dir, ids.length - 1);

  const second = await collectSortKeys(dir, 'qf', ids, cached);
  sameKeys(second, reference, 'from the cache');
  const parallel = await collectSortKeys(dir, 'qf', ids, { cacheFrom: 2, parallelFrom: 2, folderInodes: false });
  sameKeys(parallel, reference, 'from the cache, with the worker thread');
  const inodes = await collectSortKeys(dir, 'qf', ids, byInodes);
  sameKeys(inodes, reference, 'from the cache, by inode numbers');
  assert.equal(inodes.fromCache.filter((f) => f === 1).length, ids.length - 1, 'every good item settled by its inode');
  const both = await collectSortKeys(dir, 'qf', ids, { cacheFrom: 2, parallelFrom: 2 });
  sameKeys(both, reference, 'by inode numbers, with the worker thread');
  assert.ok(Array.from(second.state).every((s) => s === HeadState.Ok || s === HeadState.Unreadable), 'every cached item was checked');
  removeDir(dir);
});

test('an item changed after the cache was written is read again', async () => {
  const dir = makeTempDir();
  const { store, items } = await smallQueue(dir);
  const ids = await store.list();
  await collectSortKeys(dir, 'qf', ids, cached);
  await cacheWithItems(dir, ids.length - 1);

  // A rewrite through the store (a rename: new inode).
  const renamed = { ...items[0], priority: 999_999, attempts: 9 };
  await store.update(renamed);
  // An edit in place: same inode, new size and time.
  const edited = { ...items[1], priority: -555_555 };
  fs.writeFileSync(path.join(dir, `qf${edited.id}`), serializeControlFile(edited));
  // An edit in place with the same size: only the time differs.
  const sameSize = { ...items[2], priority: items[2].priority + 1 };
  const file = path.join(dir, `qf${sameSize.id}`);
  const before = fs.statSync(file);
  fs.writeFileSync(file, serializeControlFile(sameSize));
  assert.equal(fs.statSync(file).size, before.size, 'the test needs the same size');
  fs.utimesSync(file, before.atime, new Date(before.mtimeMs + 5000));
  // A good control file turned damaged, and a control file replaced by a symlink.
  fs.writeFileSync(path.join(dir, `qf${items[3].id}`), 'V8\ngarbage\n');
  // The symlink is made beside the file and renamed over it, so that it cannot
  // get the file's inode number back, as a new file made after an unlink can.
  const link = path.join(dir, `link-${items[6].id}`);
  fs.symlinkSync(path.join(dir, `qf${items[7].id}`), link);
  fs.renameSync(link, path.join(dir, `qf${items[6].id}`));

  const now = await store.list();
  const at = (id: string): number => now.indexOf(id);
  // By the folder's inode numbers: a replaced file is read again, a file
  // edited in place keeps its cached keys, which only order the run.
  const fromInodes = await collectSortKeys(dir, 'qf', now, byInodes);
  assert.equal(fromInodes.priority[at(renamed.id)], 999_999);
  assert.equal(fromInodes.fromCache[at(renamed.id)], 0);
  assert.equal(fromInodes.state[at(items[6].id)], HeadState.Unreadable);
  assert.equal(fromInodes.fromCache[at(edited.id)], 1);
  assert.equal(fromInodes.priority[at(edited.id)], items[1].priority, 'kept from the cache');
  // Whatever that run wrote, the lstat() check below detects the edits in place.
  await sortCacheWritten();

  const keys = await collectSortKeys(dir, 'qf', now, cached);
  const reference = await collectSortKeys(dir, 'qf', now, uncached);
  sameKeys(keys, reference, 'after the changes');
  assert.equal(keys.priority[at(renamed.id)], 999_999);
  assert.equal(keys.attempts[at(renamed.id)], 9);
  assert.equal(keys.priority[at(edited.id)], -555_555);
  assert.equal(keys.priority[at(sameSize.id)], sameSize.priority);
  assert.equal(keys.state[at(items[3].id)], HeadState.Unreadable);
  assert.equal(keys.state[at(items[6].id)], HeadState.Unreadable, 'a symlinked control file is not read');

  removeDir(dir);
});

test('a damaged, foreign or symlinked cache is ignored', async () => {
  const dir = makeTempDir();
  const { store } = await smallQueue(dir, 10);
  const ids = await store.list();
  const reference = await collectSortKeys(dir, 'qf', ids, uncached);
  const cacheFile = sortCachePath(dir, 'qf');

  // Keys that would reorder every item, with stat fields that match nothing.
  const fields = new Float64Array(ids.length * CACHE_FIELDS).fill(7);
  assert.equal(await writeSortCache(dir, 'qf', ids, fields), true);
  assert.equal(loadSortCache(dir, 'qf')?.index.size, ids.length);
  sameKeys(await collectSortKeys(dir, 'qf', ids, { ...cached }), reference, 'stale stat fields');

  const good = fs.readFileSync(cacheFile);
  const variants: Array<[string, Buffer]> = [
    ['truncated', good.subarray(0, good.length - 3)],
    ['longer', Buffer.concat([good, Buffer.alloc(80)])],
    ['other magic', Buffer.concat([Buffer.from('XXSORT01'), good.subarray(8)])],
    ['empty', Buffer.alloc(0)],
    ['bad id', Buffer.concat([good.subarray(0, 16), Buffer.from('../../etc/passw'), good.subarray(31)])],
  ];
  for (const [label, bytes] of variants) {
    fs.writeFileSync(cacheFile, bytes);
    assert.equal(loadSortCache(dir, 'qf'), undefined, label);
  }
  fs.rmSync(cacheFile);
  const elsewhere = path.join(dir, 'elsewhere');
  fs.writeFileSync(elsewhere, good);
  fs.symlinkSync(elsewhere, cacheFile);
  assert.equal(loadSortCache(dir, 'qf'), undefined, 'symlink');
  removeDir(dir);
});

test('recovery removes a cache file left half written by a dead process', async () => {
  const dir = makeTempDir();
  await smallQueue(dir, 2);
  const dead = path.join(dir, '.sortkeys-qf.999999999.1');
  const live = path.join(dir, `.sortkeys-qf.${process.pid}.1`);
  fs.writeFileSync(dead, 'PHSORT01');
  fs.writeFileSync(live, 'PHSORT01');
  fs.writeFileSync(sortCachePath(dir, 'qf'), 'PHSORT01');
  await recoverQueue(dir, captureLogger().logger);
  assert.equal(fs.existsSync(dead), false, 'the dead process is gone');
  assert.equal(fs.existsSync(live), true, 'a live process may still be writing it');
  assert.equal(fs.existsSync(sortCachePath(dir, 'qf')), true, 'the cache itself stays');
  removeDir(dir);
});
