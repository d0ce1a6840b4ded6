// A queue run without force (the daemon's -q15m) takes only the items whose
// retry time has come, read from the head of each control file
// (DeliveryRunner.isDue). An item whose control file cannot be read is left
// to the deliverer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { QueueStore } from '../../src/queue/store';
import { DeliveryRunner } from '../../src/daemon/runner';
import type { Deliverer } from '../../src/delivery/deliver';
import { captureLogger, makeTempDir, removeDir, sampleItem } from '../queue/helpers';

test('queue run takes only due items', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const { logger } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init();
  const now = Math.floor(Date.now() / 1000);

  const queue = async (attempts: number, lastAttempt: number): Promise<string> => {
    const id = store.newId();
    const writer = await store.openDataFile(id);
    await writer.write(Buffer.from('body\r\n'));
    await writer.close();
    await store.commit({ ...sampleItem(id), attempts, lastAttempt, created: now - 7200 });
    return id;
  };
  const fresh = await queue(0, 0);
  const justTried = await queue(1, now);
  const longAgo = await queue(3, now - 24 * 3600);
  const damaged = await queue(0, 0);
  fs.writeFileSync(store.controlPath(damaged), 'V8\nnot a control file\n');

  const delivered: string[] = [];
  const deliverer = { deliver: async (id: string) => void delivered.push(id) } as unknown as Deliverer;
  const runner = new DeliveryRunner(deliverer, store, logger, { concurrency: 4 });

  await runner.runQueue({ force: false });
  assert.deepEqual(delivered.sort(), [fresh, longAgo, damaged].sort());
  assert.ok(!delivered.includes(justTried), 'tried a moment ago: its retry time has not come');

  delivered.length = 0;
  await runner.runQueue({ force: true });
  assert.deepEqual(delivered.sort(), [fresh, justTried, longAgo, damaged].sort());
});

test('item locked at commit during a run is delivered', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const { logger } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init();

  const calls: Array<{ id: string; locked: boolean }> = [];
  let release: () => void = () => undefined;
  const firstDone = new Promise<void>((resolve) => (release = resolve));
  const deliverer = {
    deliver: async (id: string, opts: { locked?: boolean }) => {
      calls.push({ id, locked: opts.locked === true });
      // The queue run's attempt finds the item locked by the commit.
      if (calls.length === 1) await firstDone;
      return opts.locked === true ? 'done' : 'locked';
    },
  } as unknown as Deliverer;
  const runner = new DeliveryRunner(deliverer, store, logger, { concurrency: 4 });

  runner.schedule('item1', true);
  // The session's commit took the lock and hands the item on while that attempt runs.
  runner.schedule('item1', true, true);
  release();
  await runner.idle();
  assert.deepEqual(calls, [
    { id: 'item1', locked: false },
    { id: 'item1', locked: true },
  ]);
});

test('failed delivery logs system errors briefly', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const { logger, lines } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init();
  const ids: string[] = [];
  for (let n = 0; n < 2; n++) {
    const id = store.newId();
    const writer = await store.openDataFile(id);
    await writer.write(Buffer.from('body\r\n'));
    await writer.close();
    await store.commit(sampleItem(id));
    ids.push(id);
  }

  // The first item meets a read-only disk, the second a bug.
  const deliverer = {
    deliver: async (id: string) => {
      if (id === ids[0]) throw Object.assign(new Error("EROFS: read-only file system, open 'x'"), { code: 'EROFS' });
      throw new TypeError('undefined is not a function');
    },
  } as unknown as Deliverer;
  const runner = new DeliveryRunner(deliverer, store, logger, { concurrency: 1 });
  await runner.runQueue({ force: true });

  const system = lines.find((l) => l.includes(`${ids[0]}: delivery failed`)) ?? '';
  const bug = lines.find((l) => l.includes(`${ids[1]}: delivery failed`)) ?? '';
  assert.match(system, /delivery failed: EROFS: read-only file system, open 'x'$/);
  assert.doesNotMatch(system, /\bat /);
  assert.match(bug, /delivery failed: TypeError: undefined is not a function/);
  assert.match(bug, /\bat /, 'a bug keeps its stack');
});

test('queue run ends while other deliveries run', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const { logger } = captureLogger();
  const store = new QueueStore({ dir, superSafe: 'false', logger });
  await store.init();
  const id = store.newId();
  const writer = await store.openDataFile(id);
  await writer.write(Buffer.from('body\r\n'));
  await writer.close();
  await store.commit(sampleItem(id));

  // An immediate delivery of new mail that does not end during the run.
  let release: () => void = () => undefined;
  const busy = new Promise<void>((resolve) => (release = resolve));
  const delivered: string[] = [];
  const deliverer = {
    deliver: async (target: string) => {
      if (target === 'new-mail') await busy;
      delivered.push(target);
    },
  } as unknown as Deliverer;
  const runner = new DeliveryRunner(deliverer, store, logger, { concurrency: 4 });
  runner.schedule('new-mail');

  await runner.runQueue({ force: true });
  assert.deepEqual(delivered, [id]);
  release();
  await runner.idle();
  assert.deepEqual(delivered, [id, 'new-mail']);
});
