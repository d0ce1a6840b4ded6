import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatQueueId, QueueIdGenerator, queueIdTime } from '../../src/queue/id';

const JUNE_20_2006 = new Date(Date.UTC(2006, 5, 20, 12, 14, 4));

test('queue id matches sendmail example', () => {
  // "Kb" is sequence number 20 * 60 + 37.
  const ids = new QueueIdGenerator({ pid: 12345, sequenceStart: 20 * 60 + 37 });
  assert.equal(ids.next(JUNE_20_2006), 'k5KCE4Kb012345');
});

test('queue id pads pid to six digits', () => {
  assert.equal(formatQueueId(JUNE_20_2006, 0, 7), 'k5KCE400000007');
  assert.equal(formatQueueId(JUNE_20_2006, 0, 4194303), 'k5KCE4004194303');
});

test('queue id sequence wraps after xx', () => {
  const ids = new QueueIdGenerator({ pid: 1, sequenceStart: 3599 });
  assert.equal(ids.next(JUNE_20_2006).slice(6, 8), 'xx');
  assert.equal(ids.next(JUNE_20_2006).slice(6, 8), '00');
});

test('queue ids are unique within one second', () => {
  const ids = new QueueIdGenerator({ pid: 4242 });
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    const id = ids.next(JUNE_20_2006);
    assert.match(id, /^[0-9A-Za-x]{6}[0-9A-Za-x]{2}004242$/);
    seen.add(id);
  }
  assert.equal(seen.size, 100_000);
});

test('queue ids are unique with the real clock', () => {
  const ids = new QueueIdGenerator();
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(ids.next());
  assert.equal(seen.size, 100_000);
});

test('queue id borrows next second after 3600 ids', () => {
  const ids = new QueueIdGenerator({ pid: 1, sequenceStart: 0 });
  const first = ids.next(JUNE_20_2006);
  for (let i = 1; i < 3600; i++) ids.next(JUNE_20_2006);
  const next = ids.next(JUNE_20_2006);
  assert.equal(first.slice(0, 6), 'k5KCE4');
  assert.equal(next.slice(0, 6), 'k5KCE5');
  assert.equal(next.slice(6, 8), '00');
});

test('queue id time is kept across a clock step back', () => {
  const ids = new QueueIdGenerator({ pid: 1, sequenceStart: 0 });
  ids.next(JUNE_20_2006);
  const earlier = new Date(JUNE_20_2006.getTime() - 60_000);
  assert.equal(ids.next(earlier), 'k5KCE401000001');
});

test('queueIdTime decodes the GMT time', () => {
  const time = queueIdTime('k5KCE4Kb012345', new Date(Date.UTC(2010, 0, 1)));
  assert.deepEqual(time, JUNE_20_2006);
});

test('queueIdTime round-trips a current id', () => {
  const now = new Date(Date.UTC(2026, 2, 31, 23, 59, 58));
  const id = new QueueIdGenerator().next(now);
  assert.deepEqual(queueIdTime(id, now), now);
});

test('queueIdTime rejects malformed ids', () => {
  assert.equal(queueIdTime('short'), undefined);
  assert.equal(queueIdTime('k5KCE4Kb01234x'), undefined);
  assert.equal(queueIdTime('kCKCE4Kb012345'), undefined, 'month 12 does not exist');
  assert.equal(queueIdTime('k5KzE4Kb012345'), undefined, 'hour 61 does not exist');
});
