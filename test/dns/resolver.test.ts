import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';

import { MailResolver, parseAddressLiteral } from '../../src/dns/resolver';
import { startDnsServer, DnsServer } from '../helpers/dns-server';

let server: DnsServer;
let resolver: MailResolver;

before(async () => {
  server = await startDnsServer({
    zones: {
      'ordered.test': [
        { type: 'MX', preference: 20, exchange: 'mx2.ordered.test' },
        { type: 'MX', preference: 10, exchange: 'mx1.ordered.test' },
        { type: 'MX', preference: 30, exchange: 'mx3.ordered.test' },
      ],
      'equal.test': [
        { type: 'MX', preference: 10, exchange: 'a.equal.test' },
        { type: 'MX', preference: 10, exchange: 'b.equal.test' },
        { type: 'MX', preference: 10, exchange: 'c.equal.test' },
        { type: 'MX', preference: 5, exchange: 'first.equal.test' },
      ],
      'implicit.test': [{ type: 'A', address: '127.0.0.5' }],
      'nodata.test': [{ type: 'TXT', text: 'no mail here' }],
      'null.test': [{ type: 'MX', preference: 0, exchange: '.' }],
      'broken.test': [{ type: 'MX', preference: 10, exchange: 'mx.broken.test' }],
      'slow.test': [{ type: 'MX', preference: 10, exchange: 'mx.slow.test' }],
      'dual.test': [
        { type: 'A', address: '127.0.0.7' },
        { type: 'AAAA', address: '::1' },
      ],
      'alias.test': [{ type: 'CNAME', name: 'dual.test' }],
      'txt.test': [{ type: 'TXT', text: ['v=spf1 ', '-all'] }],
      '4.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'host4.test' }],
    },
  });
  server.setMode('broken.test', 'servfail');
  server.setMode('slow.test', 'timeout');
  resolver = new MailResolver([`${server.address}:${server.port}`], { timeoutMs: 200, tries: 1 });
});

after(async () => {
  await server.close();
});

test('MX hosts sorted by preference', async () => {
  const r = await resolver.resolveMxHosts('ordered.test');
  assert.equal(r.kind, 'hosts');
  if (r.kind !== 'hosts') return;
  assert.deepEqual(
    r.hosts.map((h) => h.name),
    ['mx1.ordered.test', 'mx2.ordered.test', 'mx3.ordered.test'],
  );
  assert.deepEqual(
    r.hosts.map((h) => h.preference),
    [10, 20, 30],
  );
});

test('equal preferences come in random order', async () => {
  const firstSeen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const r = await resolver.resolveMxHosts('equal.test');
    assert.equal(r.kind, 'hosts');
    if (r.kind !== 'hosts') return;
    assert.equal(r.hosts[0].name, 'first.equal.test');
    assert.equal(r.hosts.length, 4);
    firstSeen.add(r.hosts[1].name);
  }
  // Each of the three hosts leads its group with probability 1/3, so missing
  // one in 40 lookups happens with probability below 1e-6.
  assert.deepEqual([...firstSeen].sort(), ['a.equal.test', 'b.equal.test', 'c.equal.test']);
});

test('implicit MX is the domain itself', async () => {
  const r = await resolver.resolveMxHosts('implicit.test');
  assert.deepEqual(r, { kind: 'hosts', hosts: [{ name: 'implicit.test', preference: 0 }] });
});

test('no MX and no address is nxdomain', async () => {
  assert.deepEqual(await resolver.resolveMxHosts('nodata.test'), { kind: 'nxdomain' });
  assert.deepEqual(await resolver.resolveMxHosts('missing.test'), { kind: 'nxdomain' });
});

test('null MX', async () => {
  assert.deepEqual(await resolver.resolveMxHosts('null.test'), { kind: 'nullmx' });
});

test('SERVFAIL is a temporary failure', async () => {
  const r = await resolver.resolveMxHosts('broken.test');
  assert.equal(r.kind, 'tempfail');
});

test('no answer is a temporary failure', async () => {
  const r = await resolver.resolveMxHosts('slow.test');
  assert.deepEqual(r, { kind: 'tempfail', reason: 'timeout' });
});

test('address literals bypass DNS', async () => {
  const before = server.queries.size;
  assert.deepEqual(await resolver.resolveMxHosts('[127.0.0.9]'), {
    kind: 'hosts',
    hosts: [{ name: '[127.0.0.9]', preference: 0 }],
  });
  assert.deepEqual(await resolver.resolveAddresses('[127.0.0.9]'), {
    kind: 'addresses',
    addresses: ['127.0.0.9'],
  });
  assert.deepEqual(await resolver.resolveAddresses('[IPv6:::1]'), {
    kind: 'addresses',
    addresses: ['::1'],
  });
  assert.equal(server.queries.size, before);
  assert.equal(parseAddressLiteral('[not.an.ip]'), undefined);
  assert.equal(parseAddressLiteral('example.com'), undefined);
});

test('addresses: IPv4 then IPv6, through CNAME', async () => {
  assert.deepEqual(await resolver.resolveAddresses('dual.test'), {
    kind: 'addresses',
    addresses: ['127.0.0.7', '::1'],
  });
  assert.deepEqual(await resolver.resolveAddresses('alias.test'), {
    kind: 'addresses',
    addresses: ['127.0.0.7', '::1'],
  });
  assert.deepEqual(await resolver.resolveAddresses('missing.test'), { kind: 'nxdomain' });
  assert.equal((await resolver.resolveAddresses('broken.test')).kind, 'tempfail');
});

test('TXT and PTR', async () => {
  assert.deepEqual(await resolver.resolveTxt('txt.test'), {
    kind: 'records',
    records: ['v=spf1 -all'],
  });
  assert.deepEqual(await resolver.reverse('127.0.0.4'), { kind: 'names', names: ['host4.test'] });
  assert.deepEqual(await resolver.reverse('127.0.0.8'), { kind: 'nxdomain' });
});

test('records can change while running', async () => {
  server.setRecords('late.test', [{ type: 'MX', preference: 1, exchange: 'mx.late.test' }]);
  const r = await resolver.resolveMxHosts('late.test');
  assert.deepEqual(r, { kind: 'hosts', hosts: [{ name: 'mx.late.test', preference: 1 }] });
});

test('TCP answers the same as UDP', async () => {
  const net = await import('node:net');
  const { encodeName } = await import('../helpers/dns-server');
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const question = Buffer.concat([encodeName('implicit.test'), Buffer.from([0, 1, 0, 1])]);
  const query = Buffer.concat([header, question]);
  const framed = Buffer.concat([Buffer.from([0, query.length]), query]);
  const response = await new Promise<Buffer>((resolve, reject) => {
    const s = net.connect(server.port, server.address, () => s.write(framed));
    let got = Buffer.alloc(0);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        s.end();
        resolve(got.subarray(2));
      }
    });
    s.on('error', reject);
  });
  assert.equal(response.readUInt16BE(0), 0x1234);
  assert.equal(response.readUInt16BE(6), 1);
  assert.deepEqual([...response.subarray(response.length - 4)], [127, 0, 0, 5]);
});

test('server and resolver over IPv6 loopback', async () => {
  const v6 = await startDnsServer({ host: '::1', zones: { 'six.test': [{ type: 'AAAA', address: '::1' }] } });
  try {
    const r6 = new MailResolver([`[::1]:${v6.port}`], { timeoutMs: 300, tries: 1 });
    assert.deepEqual(await r6.resolveAddresses('six.test'), { kind: 'addresses', addresses: ['::1'] });
  } finally {
    await v6.close();
  }
});
