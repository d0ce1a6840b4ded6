// A queue run lists an item, then another run (the daemon's immediate delivery
// or a parallel `posthorn -q`) delivers and removes it before this run takes
// the lock. The late run must skip the item quietly, not fail with ENOENT and
// log "delivery failed" with a stack trace (seen with `posthorn -q` in a loop
// beside a daemon started with -q1s).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Deliverer } from '../../src/delivery/deliver';
import { MailResolver } from '../../src/dns/resolver';
import { QueueStore } from '../../src/queue/store';
import { startSink } from '../helpers/sink';
import { makeConfig, makeItem, memoryLogger, recipient } from './fixtures';

test('an item removed by another run between listing and lock is skipped', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-vanished-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const sink = await startSink({ host: '127.0.0.2' });
  t.after(() => sink.close());
  const queueDirectory = path.join(root, 'mqueue');
  const mailboxDirectory = path.join(root, 'mail');
  fs.mkdirSync(mailboxDirectory);
  const config = makeConfig({ queueDirectory, mailboxDirectory, mailers: [{ name: 'esmtp', port: sink.port }] });
  const resolver = new MailResolver(['127.0.0.1:9'], { timeoutMs: 100, tries: 1 });

  // Two stores on one folder, as the daemon and `posthorn -q` are two processes.
  const first = memoryLogger();
  const second = memoryLogger();
  const storeA = new QueueStore({ dir: queueDirectory, superSafe: 'true', logger: first.logger });
  await storeA.init();
  const storeB = new QueueStore({ dir: queueDirectory, superSafe: 'true', logger: second.logger });
  await storeB.init();

  const id = storeA.newId();
  const writer = await storeA.openDataFile(id);
  await writer.write(Buffer.from('Hello.\r\n'));
  await writer.close();
  await storeA.commit(makeItem(id, [recipient('bob@[127.0.0.2]')], { bodySize: writer.size }));

  // Run B lists the item; then run A delivers and removes it.
  assert.deepEqual(await storeB.list(), [id]);
  const delivererA = new Deliverer({ config, store: storeA, logger: first.logger, resolver });
  await delivererA.deliver(id);
  assert.deepEqual(await storeA.list(), [], 'run A removed the item');

  // Run B now gets the lock on an item that is gone.
  const delivererB = new Deliverer({ config, store: storeB, logger: second.logger, resolver });
  assert.equal(await delivererB.deliver(id), 'skipped');
  assert.equal(storeB.holdsLock(id), false, 'the lock is released');
  assert.deepEqual(fs.readdirSync(queueDirectory).filter((f) => !f.startsWith('.')), [], 'nothing left in the queue');
});
