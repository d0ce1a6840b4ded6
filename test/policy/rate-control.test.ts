// Connection counting for ratecontrol and conncontrol, and their replies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionCounters, checkClientRate, parseControlFeature } from '../../src/policy/rate-control';
import { checkClientConn } from '../../src/policy/conn-control';
import { formatReply } from '../../src/smtp/reply';
import { accessFrom } from './helpers';

test('rates count within the window', () => {
  let now = 1_000_000;
  const counters = new ConnectionCounters(60_000, 100, () => now);
  assert.equal(counters.opened('192.0.2.1').clientRate, 1);
  assert.equal(counters.opened('192.0.2.1').clientRate, 2);
  const other = counters.opened('192.0.2.2');
  assert.equal(other.clientRate, 1);
  assert.equal(other.totalRate, 3);
  now += 61_000;
  const later = counters.opened('192.0.2.1');
  assert.equal(later.clientRate, 1, 'connections older than the window no longer count');
  assert.equal(later.totalRate, 1);
});

test('open connections exclude the new one', () => {
  const counters = new ConnectionCounters(60_000);
  assert.equal(counters.opened('192.0.2.1').clientConnections, 0);
  assert.equal(counters.opened('192.0.2.1').clientConnections, 1);
  counters.closed('192.0.2.1');
  assert.equal(counters.opened('192.0.2.1').clientConnections, 1);
  counters.closed('192.0.2.1');
  counters.closed('192.0.2.1');
  assert.equal(counters.openSessions(), 0);
});

test('rate table stays bounded under a flood', () => {
  const counters = new ConnectionCounters(60_000, 1024);
  for (let i = 0; i < 100_000; i++) {
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    counters.opened(address);
    counters.closed(address);
  }
  assert.equal(counters.trackedClients(), 1024);
  assert.equal(counters.openSessions(), 0);
});

test('ClientRate rejects above the limit', () => {
  const access = accessFrom({ 'ClientRate:192.0.2.7': '2', 'ClientRate:192.0.2': '0', 'ClientRate:': '10' });
  const plain = parseControlFeature([]);
  assert.equal(checkClientRate(access, '192.0.2.7', 2, plain), undefined);
  const r = checkClientRate(access, '192.0.2.7', 3, plain);
  assert.equal(r && formatReply(r), '452 4.3.2 Connection rate limit exceeded.\r\n');
  assert.equal(checkClientRate(access, '192.0.2.8', 1000, plain), undefined, 'prefix entry 0 means no limit');
  assert.ok(checkClientRate(access, '198.51.100.1', 11, plain), 'default entry applies');
  const t = checkClientRate(access, '192.0.2.7', 3, parseControlFeature(['', 'terminate']));
  assert.equal(t && formatReply(t), '421 4.3.2 Connection rate limit exceeded.\r\n');
});

test('ClientConn allows at most the limit', () => {
  const access = accessFrom({ 'ClientConn:IPv6:2001:db8::25': '1', 'ClientConn:': '3' });
  const plain = parseControlFeature([]);
  assert.equal(checkClientConn(access, '2001:db8::25', 0, plain), undefined);
  const r = checkClientConn(access, '2001:db8::25', 1, plain);
  assert.equal(r && formatReply(r), '452 4.3.2 Too many open connections.\r\n');
  assert.equal(checkClientConn(access, '192.0.2.1', 2, plain), undefined);
  assert.ok(checkClientConn(access, '192.0.2.1', 3, plain));
});

test('control feature arguments', () => {
  assert.deepEqual(parseControlFeature(['nodelay', 'terminate']), { nodelay: true, terminate: true });
  assert.deepEqual(parseControlFeature(['', 'terminate']), { nodelay: false, terminate: true });
  assert.deepEqual(parseControlFeature([]), { nodelay: false, terminate: false });
});
