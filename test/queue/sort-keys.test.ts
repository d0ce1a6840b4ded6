// Sort keys from the heads of control files (QueueSortOrder over deep queues):
// the keys match the full parser, and queue runs and mailq keep exactly the
// order that parsing every control file gave.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseControlFile, serializeControlFile } from '../../src/queue/qf';
import { QueueStore } from '../../src/queue/store';
import { collectSortKeys, HeadState, parseQueueHead, readQueueHeadSync, SortKeys } from '../../src/queue/sort-keys';
import { gatherQueue, queueRunIds, type QueueRunPolicy, type QueueSortOrder } from '../../src/queue/sort';
import { streamMailq } from '../../src/queue/mailq-stream';
import { formatMailq, readMailqEntries } from '../../src/queue/mailq';
import { sortWork } from '../../src/queue/sort';
import type { QueueItem } from '../../src/queue/types';
import { captureLogger, makeTempDir, removeDir, sampleItem } from './helpers';

function headOf(text: string): { state: HeadState; keys: SortKeys } {
  const keys = new SortKeys(['x']);
  const buf = Buffer.from(text, 'latin1');
  const result = parseQueueHead(buf, buf.length, keys, 0);
  keys.state[0] = result === true ? HeadState.Ok : HeadState.Unreadable;
  return { state: keys.state[0], keys };
}

test('head keys match the full parser', () => {
  const variants: Array<Partial<QueueItem>> = [
    {},
    { priority: -120000, created: 7, lastAttempt: 1234567890, attempts: 12 },
    { quarantine: 'held for review', statusMessage: 'Deferred: 451 try later' },
    { macros: new Map([['long', 'v'.repeat(9000)]]), priority: 42 },
    { bodyType: undefined, flags: '', envid: undefined, priority: Number.MAX_SAFE_INTEGER - 1 },
  ];
  for (const fields of variants) {
    const item = { ...sampleItem('k5KCE4Kb012345'), ...fields };
    const text = serializeControlFile(item);
    const full = parseControlFile(text, item.id);
    const dir = makeTempDir();
    const file = path.join(dir, 'qf' + item.id);
    fs.writeFileSync(file, text);
    const keys = new SortKeys([item.id]);
    readQueueHeadSync(file, Buffer.alloc(4096), keys, 0);
    removeDir(dir);
    assert.equal(keys.state[0], HeadState.Ok);
    assert.deepEqual(
      [keys.created[0], keys.lastAttempt[0], keys.attempts[0], keys.priority[0], keys.quarantined[0] === 1],
      [full.created, full.lastAttempt, full.attempts, full.priority, full.quarantine !== undefined],
    );
  }
});

test('damaged head is unreadable', () => {
  assert.equal(headOf('garbage\n').state, HeadState.Unreadable);
  assert.equal(headOf('').state, HeadState.Unreadable);
  assert.equal(headOf('V8\nK0\nP10\nS<a@b>\n').state, HeadState.Unreadable, 'no T line');
  assert.equal(headOf('V8\nT1\nP1x\nS<a@b>\n').state, HeadState.Unreadable, 'bad number');
  assert.equal(headOf('V8\nT1\nP-\nS<a@b>\n').state, HeadState.Unreadable, 'sign without digits');
  assert.equal(headOf('V8\nT-1\nS<a@b>\n').state, HeadState.Unreadable, 'T is unsigned');
  assert.equal(headOf('V8\nT1\nP99999999999999999999\nS<a@b>\n').state, HeadState.Unreadable, 'not a safe integer');
  assert.equal(headOf('V8\nT1\nP10\nRP:<a@b>\nS<a@b>\n').state, HeadState.Unreadable, 'R before S');
  assert.equal(headOf('V8\nT1\nP10\n').state, HeadState.Unreadable, 'ends before S');
  const ok = headOf('V8\nT5\nK3\nN2\nP-7\nXsize=1\nS<a@b>\nRP:<c@d>\n');
  assert.equal(ok.state, HeadState.Ok);
  assert.deepEqual([ok.keys.created[0], ok.keys.lastAttempt[0], ok.keys.attempts[0], ok.keys.priority[0]], [5, 3, 2, -7]);
});

/** Builds a queue of mixed items: equal and differing priorities and times, quarantined, tried and unreadable ones. */
async function mixedQueue(dir: string): Promise<QueueStore> {
  const store = new QueueStore({ dir, superSafe: 'false', logger: captureLogger().logger });
  await store.init({ recover: false });
  const now = Math.floor(Date.now() / 1000);
  let seed = 7;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 240; i++) {
    const id = store.newId();
    const item: QueueItem = {
      ...sampleItem(id),
      // Few distinct values, so that ties are common and the stable order counts.
      priority: (next(6) - 2) * 30000,
      created: now - next(5) * 60,
      lastAttempt: next(3) === 0 ? now - next(4) * 60 : 0,
      attempts: next(3),
      quarantine: next(15) === 0 ? 'held' : undefined,
      recipients: [{ address: `rcpt${i}@host${next(4)}.example`, state: 'pending' }],
    };
    fs.writeFileSync(path.join(dir, `df${id}`), 'Subject: x\r\n\r\nbody\r\n');
    let text = serializeControlFile(item);
    if (next(20) === 0) text = 'V8\nnot a control file\n';
    fs.writeFileSync(path.join(dir, `qf${id}`), text);
  }
  return store;
}

test('queue run order unchanged for mixed items', async () => {
  const dir = makeTempDir();
  const store = await mixedQueue(dir);
  const base: QueueRunPolicy = { order: 'priority', minQueueAgeMs: 0, maxRunSize: 0, queueFactor: 600000, queueLA: 8, load: () => 0 };
  const policies: QueueRunPolicy[] = [];
  for (const order of ['priority', 'time', 'filename', 'none'] as QueueSortOrder[]) {
    policies.push({ ...base, order });
    policies.push({ ...base, order, minQueueAgeMs: 90_000 });
    policies.push({ ...base, order, maxRunSize: 17 });
    policies.push({ ...base, order, load: () => 10, queueFactor: 40000 });
  }
  for (const policy of policies) {
    const load = policy.load!();
    const underLoad = load >= policy.queueLA;
    // The reference: every control file parsed whole (when the order or a filter needs it), as before the heads were used.
    const reference = await gatherQueue(store, {
      order: policy.order,
      minQueueAgeMs: policy.minQueueAgeMs,
      shouldQueue: underLoad ? (item) => item.priority > policy.queueFactor / (load - policy.queueLA + 1) : undefined,
      maxRunSize: policy.maxRunSize,
    });
    const label = JSON.stringify({ ...policy, load });
    assert.deepEqual(await queueRunIds(store, policy), reference.map((e) => e.id), label);
  }
  removeDir(dir);
});

test('mailq priority and time listing unchanged', async () => {
  const dir = makeTempDir();
  const store = await mixedQueue(dir);
  // A lock held by this (live) process: printed with "*".
  const [locked] = await store.list();
  assert.equal(await store.lock(locked), true);
  for (const order of ['priority', 'time'] as const) {
    let streamed = '';
    await streamMailq(store, '/q', { kind: 'qf', order, minQueueAgeMs: 0, write: async (t) => void (streamed += t) });

    const entries = await readMailqEntries(store, 'qf');
    const work = entries
      .filter((e) => e.item?.quarantine === undefined)
      .map((e) => ({ id: e.id, item: e.item, entry: e }));
    sortWork(work, order);
    const expected = formatMailq('/q', work.map((w) => w.entry));
    // The streamed header counts the quarantined items too (they are listed with -qQ only).
    const total = entries.length;
    const fixed = expected
      .replace(/\(\d+ requests\)/, `(${total} requests)`)
      .replace(/Total requests: \d+/, `Total requests: ${total}`);
    assert.equal(streamed, fixed, order);
    assert.match(streamed, new RegExp(`^ *${locked}\\*`, 'm'));
  }
  await store.unlock(locked);
  removeDir(dir);
});

test('a worker thread reading half the heads gives the same keys', async () => {
  const dir = makeTempDir();
  const store = await mixedQueue(dir);
  const ids = await store.list();
  const alone = await collectSortKeys(dir, 'qf', ids, { parallelFrom: Infinity });
  const shared = await collectSortKeys(dir, 'qf', ids, { parallelFrom: 2 });
  assert.ok(shared.state.buffer instanceof SharedArrayBuffer, 'the parallel path ran');
  for (const name of ['state', 'priority', 'created', 'lastAttempt', 'attempts', 'quarantined'] as const) {
    assert.deepEqual(Array.from(shared[name]), Array.from(alone[name]), name);
  }
  assert.ok(Array.from(shared.state.subarray(ids.length / 2)).every((s) => s !== HeadState.NotRead), 'the second half was read');
  removeDir(dir);
});
