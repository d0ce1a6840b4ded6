// Connection reuse to the next hop (ConnectionCacheSize, ConnectionCacheTimeout):
// a second delivery to the same server goes over the open session after RSET,
// a session the server closed is not reused, and size 0 turns the cache off.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionCache, type CachedSession } from '../../src/delivery/connection-cache';
import { quoteRe, sendToRemote, startSinkHop } from '../helpers/e2e-setup';

function fakeSession(name: string, quits: string[], usable = true): CachedSession & { open: boolean } {
  const session = {
    open: usable,
    usable: () => session.open,
    quit: async () => {
      quits.push(name);
      session.open = false;
    },
    setIdle: () => undefined,
    onClose: () => undefined,
  };
  return session;
}

test('the cache holds at most ConnectionCacheSize idle sessions and drops unusable ones', async () => {
  const quits: string[] = [];
  const cache = new ConnectionCache(2, 60_000);
  const a = fakeSession('a', quits);
  const b = fakeSession('b', quits);
  const c = fakeSession('c', quits);
  assert.equal(cache.put('k1', a), true);
  assert.equal(cache.put('k1', b), true);
  assert.equal(cache.put('k2', c), true);
  assert.deepEqual(quits, ['a'], 'the oldest idle session is ended when the cache is full');
  assert.equal(cache.take('k1'), b);
  assert.equal(cache.take('k1'), undefined);
  c.open = false;
  assert.equal(cache.take('k2'), undefined, 'a closed session is not handed out');
  assert.equal(new ConnectionCache(0, 60_000).put('k', fakeSession('d', quits)), false);
  const e = fakeSession('e', quits);
  cache.put('k3', e);
  await cache.flush();
  assert.equal(cache.idleCount, 0);
  assert.ok(quits.includes('e'));
});

/** Delivers two messages to one sink and returns the verbs of every command the sink received. */
async function deliverTwo(t: TestContext, cacheSize: number, rsetReply?: string): Promise<string[]> {
  const { ph, sink } = await startSinkHop(t, {
    sink: { replies: rsetReply ? { rset: rsetReply } : {} },
    args: ['-O', `ConnectionCacheSize=${cacheSize}`, '-O', 'DeliveryMode=background'],
  });
  for (const subject of ['first', 'second']) {
    const queueId = await sendToRemote(ph.port, subject);
    await ph.waitForLog(new RegExp(`${quoteRe(queueId)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);
  }
  const messages = await sink.waitForMessages(2, 20_000);
  assert.deepEqual(messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]), ['first', 'second']);
  return sink.commands.map((c) => c.split(' ')[0].toUpperCase());
}

test('a second delivery to the same server reuses the session after RSET', async (t) => {
  const verbs = await deliverTwo(t, 2);
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 1, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'MAIL').length, 2, verbs.join(' '));
  assert.deepEqual(verbs.slice(0, 6), ['EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'MAIL'], verbs.join(' '));
});

test('failed pipelined RSET moves to a new session', async (t) => {
  // The RSET goes out in one write with MAIL, RCPT and DATA; after its 421 the
  // session is closed before any message data, and a new session carries it.
  const verbs = await deliverTwo(t, 2, '421 4.3.2 resetting refused');
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 2, verbs.join(' '));
  assert.deepEqual(verbs.slice(4, 8), ['RSET', 'MAIL', 'RCPT', 'DATA'], verbs.join(' '));
});

test('ConnectionCacheSize=0 opens a new session per delivery', async (t) => {
  const verbs = await deliverTwo(t, 0);
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 2, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'RSET').length, 0, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'QUIT').length, 2, verbs.join(' '));
});
