// ConnectionRateThrottle and DelayLA with a fake clock, sleep and load average.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionThrottle } from '../../src/daemon/connection-throttle';
import { collectingLogger } from '../policy/helpers';

function fakeTime(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[]; set(ms: number): void } {
  let clock = 0;
  const slept: number[] = [];
  return {
    now: () => clock,
    sleep: async (ms) => {
      slept.push(ms);
      clock += ms;
    },
    slept,
    set: (ms) => {
      clock = ms;
    },
  };
}

test('throttle delays connections past N', async () => {
  const time = fakeTime();
  const { logger, lines } = collectingLogger();
  const throttle = new ConnectionThrottle({ connectionRateThrottle: 3, delayLA: 0, now: time.now, sleep: time.sleep }, logger);
  assert.equal(throttle.active, true);
  time.set(5_000);
  await Promise.all([1, 2, 3].map(() => throttle.admit('MTA')));
  assert.deepEqual(time.slept, [], 'up to N pass at once');
  await throttle.admit('MTA');
  assert.deepEqual(time.slept, [1000]);
  assert.deepEqual(lines, ['info: deferring connections on daemon MTA: 3 per second']);
  // After the sleep a new second has begun: the count starts again.
  await Promise.all([1, 2, 3].map(() => throttle.admit('MTA')));
  assert.deepEqual(time.slept, [1000]);
  // Each daemon has its own count.
  await throttle.admit('MSA');
  assert.equal(lines.length, 1);
});

test('ConnectionRateThrottle 0 is off', async () => {
  const time = fakeTime();
  const { logger, lines } = collectingLogger();
  const throttle = new ConnectionThrottle({ connectionRateThrottle: 0, delayLA: 0, now: time.now, sleep: time.sleep }, logger);
  assert.equal(throttle.active, false);
  for (let i = 0; i < 50; i++) await throttle.admit('MTA');
  assert.deepEqual(time.slept, []);
  assert.deepEqual(lines, []);
});

test('DelayLA sleeps, logs every 90 s', async () => {
  const time = fakeTime();
  let load = 7.9;
  const { logger, lines } = collectingLogger();
  const throttle = new ConnectionThrottle(
    { connectionRateThrottle: 0, delayLA: 8, now: time.now, sleep: time.sleep, loadAverage: () => load },
    logger,
  );
  await throttle.admit('MTA');
  assert.deepEqual(time.slept, [], 'a load of 7.9 counts as 7');
  load = 8.4;
  await throttle.admit('MTA');
  await throttle.admit('MTA');
  assert.deepEqual(time.slept, [1000, 1000]);
  assert.deepEqual(lines, ['info: delaying connections on daemon MTA: load average=8 >= 8']);
  time.set(95_000);
  load = 12;
  await throttle.admit('MSA');
  assert.deepEqual(lines.slice(1), ['info: delaying connections on daemon MSA: load average=12 >= 8']);
  assert.equal(time.slept.length, 3);
});

test('delayed connections keep their order', async () => {
  const time = fakeTime();
  const { logger } = collectingLogger();
  const throttle = new ConnectionThrottle({ connectionRateThrottle: 1, delayLA: 0, now: time.now, sleep: time.sleep }, logger);
  const order: number[] = [];
  await Promise.all([1, 2, 3, 4].map((n) => throttle.admit('MTA').then(() => order.push(n))));
  assert.deepEqual(order, [1, 2, 3, 4]);
});
