import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { MailResolver } from '../../src/dns/resolver';
import { hostList, routeRecipients, isOwnName } from '../../src/delivery/router';
import { startDnsServer, DnsServer } from '../helpers/dns-server';
import { makeConfig, makeItem, recipient } from './fixtures';

let dns: DnsServer;
let resolver: MailResolver;

before(async () => {
  dns = await startDnsServer({
    zones: {
      'dest.test': [
        { type: 'MX', preference: 20, exchange: 'mx2.dest.test' },
        { type: 'MX', preference: 10, exchange: 'mx1.dest.test' },
      ],
      'smart.test': [{ type: 'MX', preference: 5, exchange: 'mx.smart.test' }],
      'null.test': [{ type: 'MX', preference: 0, exchange: '.' }],
      'broken.test': [],
    },
  });
  dns.setMode('broken.test', 'servfail');
  resolver = new MailResolver([`${dns.address}:${dns.port}`], { timeoutMs: 300, tries: 1 });
});

after(async () => {
  await dns.close();
});

test('routes group recipients by mailer and domain', () => {
  const item = makeItem('r1', [
    recipient('a@dest.test'),
    recipient('b@other.test'),
    recipient('c@DEST.test'),
    recipient('root'),
    recipient('d@posthorn.test'),
    recipient('e@dest.test', { state: 'sent' }),
    recipient('f@dest.test', { state: 'deferred' }),
    recipient('g@dest.test', { state: 'bounced' }),
  ]);
  const routes = routeRecipients(item, makeConfig());
  assert.deepEqual(
    routes.map((r) => [r.mailer, r.destination, r.recipients.map((x) => x.address)]),
    [
      ['esmtp', 'dest.test', ['a@dest.test', 'c@DEST.test', 'f@dest.test']],
      ['esmtp', 'other.test', ['b@other.test']],
      ['local', 'posthorn.test', ['root', 'd@posthorn.test']],
    ],
  );
});

test('SmartHost puts all remote recipients in one relay route', () => {
  const item = makeItem('r2', [recipient('a@dest.test'), recipient('b@other.test'), recipient('c@localhost')]);
  const routes = routeRecipients(item, makeConfig({ smartHost: '[relay.test]' }));
  assert.deepEqual(
    routes.map((r) => [r.mailer, r.destination, r.recipients.length]),
    [
      ['relay', '[relay.test]', 2],
      ['local', 'posthorn.test', 1],
    ],
  );
});

test('host list from MX with mailer port', async () => {
  const config = makeConfig({ mailers: [{ name: 'esmtp', port: 2525 }] });
  const r = await hostList('dest.test', config, resolver);
  assert.deepEqual(r, {
    kind: 'hosts',
    hosts: [
      { name: 'mx1.dest.test', port: 2525, preference: 10 },
      { name: 'mx2.dest.test', port: 2525, preference: 20 },
    ],
  });
});

test('bracketed SmartHost skips the MX lookup', async () => {
  const config = makeConfig({ smartHost: '[relay.test]', mailers: [{ name: 'relay', port: 1025 }] });
  const r = await hostList('dest.test', config, resolver);
  assert.deepEqual(r, { kind: 'hosts', hosts: [{ name: 'relay.test', port: 1025, preference: 0 }] });
});

test('plain SmartHost is looked up as MX', async () => {
  const r = await hostList('dest.test', makeConfig({ smartHost: 'smart.test' }), resolver);
  assert.deepEqual(r, { kind: 'hosts', hosts: [{ name: 'mx.smart.test', port: 25, preference: 5 }] });
});

test('SmartHost with a mailer prefix', async () => {
  const config = makeConfig({ smartHost: 'esmtp:[127.0.0.3]', mailers: [{ name: 'esmtp', port: 2600 }] });
  const r = await hostList('dest.test', config, resolver);
  assert.deepEqual(r, { kind: 'hosts', hosts: [{ name: '[127.0.0.3]', port: 2600, preference: 0 }] });
});

test('FallBackSmartHost comes last', async () => {
  const config = makeConfig({ fallbackSmartHost: 'fallback.test' });
  const r = await hostList('dest.test', config, resolver);
  assert.equal(r.kind, 'hosts');
  if (r.kind !== 'hosts') return;
  assert.deepEqual(
    r.hosts.map((h) => h.name),
    ['mx1.dest.test', 'mx2.dest.test'],
  );
  assert.equal(r.fallback?.name, 'fallback.test');
  assert.equal(r.fallback?.port, 25);
});

test('FallBackSmartHost on DNS failure and unknown domains', async () => {
  const config = makeConfig({ fallbackSmartHost: '[fallback.test]' });
  const broken = await hostList('broken.test', config, resolver);
  assert.equal(broken.kind, 'tempfail');
  assert.equal(broken.kind === 'tempfail' ? broken.fallback?.name : '', 'fallback.test');
  const missing = await hostList('missing.test', config, resolver);
  assert.deepEqual(missing, { kind: 'nxdomain', fallback: { name: 'fallback.test', port: 25, preference: Number.MAX_SAFE_INTEGER } });
});

test('null MX never gets the fallback', async () => {
  const r = await hostList('null.test', makeConfig({ fallbackSmartHost: 'fallback.test' }), resolver);
  assert.deepEqual(r, { kind: 'nullmx' });
});

test('FallBackSmartHost that is our own name is ignored', async () => {
  for (const name of ['posthorn.test', '[localhost]', 'POSTHORN.TEST.']) {
    const r = await hostList('dest.test', makeConfig({ fallbackSmartHost: name }), resolver);
    assert.equal(r.kind === 'hosts' ? r.fallback : 'wrong kind', undefined, name);
  }
  assert.equal(isOwnName('other.test', makeConfig()), false);
});
