// Connect-time DNS checks end to end against a DNS server on loopback:
// mtamark's _perm._smtp._srv TXT records, use_client_ptr, dnsbl and enhdnsbl,
// and a DNS server that does not answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { startDnsServer, type DnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { makemap } from './policy-support';

async function startDnsWorld(
  t: { after(fn: () => Promise<void>): void },
  features: string[],
  access = '',
): Promise<{ ph: Posthorn; dns: DnsServer }> {
  const dns = await startDnsServer({
    zones: {
      '_perm._smtp._srv.20.0.0.127.in-addr.arpa': [{ type: 'TXT', text: '1' }],
      '_perm._smtp._srv.21.0.0.127.in-addr.arpa': [{ type: 'TXT', text: '0' }],
      '_perm._smtp._srv.22.0.0.127.in-addr.arpa': [{ type: 'TXT', text: '0' }],
      // 127.0.0.23 claims a name whose address is another one: an unverified PTR.
      '23.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'claimed.bad.example' }],
      'claimed.bad.example': [{ type: 'A', address: '192.0.2.99' }],
      '30.0.0.127.bl.test': [{ type: 'A', address: '127.0.0.2' }],
      '31.0.0.127.bl.test': [{ type: 'A', address: '127.0.0.5' }],
    },
  });
  t.after(() => dns.close());
  dns.setMode('_perm._smtp._srv.22.0.0.127.in-addr.arpa', 'timeout');
  const ph = await startPosthorn({
    mc: baseMc({
      dnsPort: dns.port,
      extra: [
        "define(`confPID_FILE', `@DIR@/pid')",
        "define(`confTO_RESOLVER_RETRANS', `1s')",
        "define(`confTO_RESOLVER_RETRY', `1')",
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        ...features,
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), access).status, 0);
  return { ph, dns };
}

const mail = ['EHLO c.example', 'MAIL FROM:<a@c.example>', 'QUIT'];

test('mtamark: 1 allows, 0 rejects, timeout tempfails', async (t) => {
  const { ph } = await startDnsWorld(t, ["FEATURE(`mtamark', `', `t')"]);
  const marked = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.20' });
  assert.match(marked[2], /^250 /);

  const unmarked = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.24' });
  assert.match(unmarked[2], /^250 /, 'no record continues');

  const rejected = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.21' });
  assert.match(rejected[0], /^220 /);
  assert.equal(rejected[2], '550 5.7.1 Rejected: 127.0.0.21 not listed as MTA');

  const timedOut = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.22' });
  assert.equal(timedOut[2], '451 4.4.3 Temporary lookup failure of _perm._smtp._srv.127.0.0.22');
});

test('mtamark ignores DNS failure by default', async (t) => {
  const { ph } = await startDnsWorld(t, ["FEATURE(`mtamark')"]);
  const timedOut = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.22' });
  assert.match(timedOut[2], /^250 /);
});

test('use_client_ptr keys on the PTR name', async (t) => {
  const access = 'Connect:bad.example\tREJECT\n';
  const without = await startDnsWorld(t, [], access);
  const verified = await rawSmtp(without.ph.port, mail, { localAddress: '127.0.0.23' });
  assert.match(verified[2], /^250 /, 'without the feature only the verified name counts');

  const withPtr = await startDnsWorld(t, ["FEATURE(`use_client_ptr')"], access);
  const claimed = await rawSmtp(withPtr.ph.port, mail, { localAddress: '127.0.0.23' });
  assert.equal(claimed[2], '550 5.7.1 Access denied');
  await withPtr.ph.waitForLog(/ruleset=check_relay, arg1=claimed\.bad\.example, arg2=127\.0\.0\.23, /);
});

test('dnsbl and enhdnsbl listings', async (t) => {
  const { ph } = await startDnsWorld(t, ["FEATURE(`enhdnsbl', `bl.test', `', `', `127.0.0.2.')"]);
  const listed = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.30' });
  assert.equal(listed[2], '550 5.7.1 Rejected: 127.0.0.30 listed at bl.test');
  const otherValue = await rawSmtp(ph.port, mail, { localAddress: '127.0.0.31' });
  assert.match(otherValue[2], /^250 /, 'an answer that is not in the value list does not count');

  const plain = await startDnsWorld(t, ["FEATURE(`dnsbl', `bl.test', `\"554 go away \" $&{client_addr}')"]);
  const anyAnswer = await rawSmtp(plain.ph.port, mail, { localAddress: '127.0.0.31' });
  assert.equal(anyAnswer[2], '554 5.7.1 go away 127.0.0.31');
  const notListed = await rawSmtp(plain.ph.port, mail, { localAddress: '127.0.0.32' });
  assert.match(notListed[2], /^250 /);
});
