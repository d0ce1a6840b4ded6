// A short torture run: 200 messages, 5 SIGKILLs of the daemon. No message that
// got a 250 is lost or corrupted, and the queue ends empty.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTorture } from './torture';

test('SIGKILL torture loses nothing', async () => {
  const result = await runTorture({ messages: 200, kills: 5, clients: 8 });
  assert.equal(result.kills, 5);
  assert.ok(result.accepted >= 100, `only ${result.accepted} of ${result.attempted} messages were accepted`);
  assert.deepEqual(result.lost, []);
  assert.deepEqual(result.corrupted, []);
  assert.deepEqual(result.leftInQueue, []);
  assert.deepEqual(result.damagedLog, []);
});
