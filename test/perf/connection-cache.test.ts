// Connection reuse to the next hop (ConnectionCacheSize, ConnectionCacheTimeout):
// a second delivery to the same server goes over the open session after RSET,
// a session the server closed is not reused, and size 0 turns the cache off.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionCache, type CachedSession } from '../../src/delivery/connection-cache';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { makeMessage, mxZone, quoteRe, sendRaw } from '../helpers/e2e-setup';

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

async function deliverTwo(cacheSize: number, rsetReply?: string): Promise<string[]> {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort, replies: rsetReply ? { rset: rsetReply } : {} });
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx1.remote.example', '127.0.0.2']]) });
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort }),
    args: ['-O', `ConnectionCacheSize=${cacheSize}`, '-O', 'DeliveryMode=background'],
  });
  try {
    for (const subject of ['first', 'second']) {
      const sent = await sendRaw({
        port: ph.port,
        from: 'alice@posthorn.test',
        to: ['bob@remote.example'],
        data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body: subject }),
      });
      assert.notEqual(sent.queueId, '', sent.accepted);
      await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: to=<bob@remote\\.example>, .*stat=Sent`), 20_000);
    }
    const messages = await sink.waitForMessages(2, 20_000);
    assert.deepEqual(messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]), ['first', 'second']);
    return sink.commands.map((c) => c.split(' ')[0].toUpperCase());
  } finally {
    await ph.stop();
    await sink.close();
    await dns.close();
  }
}

test('a second delivery to the same server reuses the session after RSET', async () => {
  const verbs = await deliverTwo(2);
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 1, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'MAIL').length, 2, verbs.join(' '));
  assert.deepEqual(verbs.slice(0, 6), ['EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'MAIL'], verbs.join(' '));
});

test('failed pipelined RSET moves to a new session', async () => {
  // The RSET goes out in one write with MAIL, RCPT and DATA; after its 421 the
  // session is closed before any message data, and a new session carries it.
  const verbs = await deliverTwo(2, '421 4.3.2 resetting refused');
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 2, verbs.join(' '));
  assert.deepEqual(verbs.slice(4, 8), ['RSET', 'MAIL', 'RCPT', 'DATA'], verbs.join(' '));
});

test('ConnectionCacheSize=0 opens a new session per delivery', async () => {
  const verbs = await deliverTwo(0);
  assert.equal(verbs.filter((v) => v === 'EHLO').length, 2, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'RSET').length, 0, verbs.join(' '));
  assert.equal(verbs.filter((v) => v === 'QUIT').length, 2, verbs.join(' '));
});
