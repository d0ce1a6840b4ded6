// The access map against sendmail 8.17's default rulesets (Debian 12's
// sendmail-cf, same map, same clients): every expected reply below is the one
// sendmail gave. Found by comparing the two servers side by side:
//
// - From: is looked up as the full address, then "user@", then the domain
//   (F, U, D); To: uses "user@" for local domains only. Posthorn tried the
//   domain before "user@", so "From:postmaster@ OK" lost to a domain REJECT
//   and "To:root@ REJECT" lost to a domain OK.
// - The null sender is accepted before any lookup (RFC 1123); a "From:<>"
//   entry rejected every bounce.
// - A value the rulesets do not know ("REJECTT") is sendmail's generic error;
//   Posthorn ignored it and accepted the sender.
// - SKIP ends one search without a result. Posthorn took a SKIP for the
//   client's host name as OK: the client's address was not looked up, and the
//   rate limit was not checked.
// - Relaying denied while the client's PTR lookup fails temporarily is 450
//   4.4.0 in sendmail. Posthorn replied 550, and could not tell a SERVFAIL
//   from a missing PTR record at all (Node's reverse() reports both as ENOTFOUND).
// - A sender at localhost from a remote client gets "Real domain name
//   required for sender address".
// - confREJECT_MSG, confRCPTREJ_MSG and confRELAY_MSG change the replies;
//   Posthorn refused the first and silently ignored the other two.
// - sendmail 8.15 and later write IPv6 keys in full (IPv6:0:0:0:0:0:0:0:1).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { startDnsServer, type DnsServer } from '../helpers/dns-server';
import { makemap } from '../e2e/policy-support';
import { addressKeys } from '../../src/policy/access';
import { MailResolver } from '../../src/dns/resolver';

const ACCESS = [
  'From:postmaster@\tOK',
  'From:bad.example\tREJECT',
  'From:abuse@\tREJECT',
  'From:good.example\tOK',
  'From:<>\tERROR:550 no bounces',
  'From:typo.example\tREJECTT',
  'From:list+*@detail.example\tREJECT',
  'To:root@\tREJECT',
  'To:posthorn.test\tOK',
  'To:elsewhere.example\tRELAY',
  'To:joe@\tERROR:550 no joe',
  'To:typo@posthorn.test\tOKAY',
  'Connect:named.example\tSKIP',
  'Connect:127.0.0.21\tREJECT',
  'Connect:127.0.0.22\tSKIP',
  'ClientRate:127.0.0.22\t1',
  '',
].join('\n');

let dns: DnsServer;
let ph: Posthorn;

before(async () => {
  dns = await startDnsServer({
    zones: {
      '21.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'host.named.example' }],
      'host.named.example': [{ type: 'A', address: '127.0.0.21' }],
      '30.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'host30.client.example' }],
      'host30.client.example': [{ type: 'A', address: '127.0.0.30' }],
    },
  });
  // 127.0.0.23's PTR lookup fails temporarily (SERVFAIL).
  dns.setMode('23.0.0.127.in-addr.arpa', 'servfail');
  ph = await startPosthorn({
    mc: baseMc({
      dnsPort: dns.port,
      extra: [
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`blacklist_recipients')",
        "FEATURE(`ratecontrol', `', `terminate')",
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  const built = makemap(path.join(ph.dir, 'access'), ACCESS);
  assert.equal(built.status, 0, built.stderr);
});

after(async () => {
  await ph?.stop();
  await dns?.close();
});

function session(from: string, script: string[]): Promise<string[]> {
  return rawSmtp(ph.port, ['HELO client.example', ...script, 'QUIT'], { localAddress: from });
}

test('From: user@ before the domain', async () => {
  const replies = await session('127.0.0.9', [
    'MAIL FROM:<postmaster@bad.example>', 'RSET',
    'MAIL FROM:<abuse@good.example>', 'RSET',
    'MAIL FROM:<Abuse@sub.good.example>',
  ]);
  assert.equal(replies[2], '250 2.1.0 <postmaster@bad.example>... Sender ok');
  assert.equal(replies[4], '550 5.7.1 <abuse@good.example>... Access denied');
  assert.equal(replies[6], '550 5.7.1 <Abuse@sub.good.example>... Access denied');
});

test('From: +detail tries user+*', async () => {
  const replies = await session('127.0.0.9', ['MAIL FROM:<list+news@detail.example>']);
  assert.equal(replies[2], '550 5.7.1 <list+news@detail.example>... Access denied');
});

test('null sender is never looked up', async () => {
  const replies = await session('127.0.0.9', ['MAIL FROM:<>', 'RCPT TO:<x@posthorn.test>']);
  assert.equal(replies[2], '250 2.1.0 <>... Sender ok');
  assert.equal(replies[3], '250 2.1.5 <x@posthorn.test>... Recipient ok');
});

test('unknown From: and To: values are errors', async () => {
  const replies = await session('127.0.0.9', ['MAIL FROM:<a@typo.example>', 'MAIL FROM:<a@ok.example>', 'RCPT TO:<typo@posthorn.test>']);
  assert.equal(replies[2], '553 5.3.0 <a@typo.example>... REJECTT');
  assert.equal(replies[4], '553 5.3.0 <typo@posthorn.test>... OKAY');
});

test('To: user@ before the domain, local domains only', async () => {
  const replies = await session('127.0.0.9', [
    'MAIL FROM:<a@ok.example>',
    'RCPT TO:<root@posthorn.test>',
    'RCPT TO:<root@elsewhere.example>',
    'RCPT TO:<joe@elsewhere.example>',
    'RCPT TO:<joe@posthorn.test>',
  ]);
  assert.equal(replies[3], '550 5.2.1 <root@posthorn.test>... Mailbox disabled for this recipient');
  assert.equal(replies[4], '250 2.1.5 <root@elsewhere.example>... Recipient ok');
  assert.equal(replies[5], '250 2.1.5 <joe@elsewhere.example>... Recipient ok');
  assert.equal(replies[6], '550 5.0.0 <joe@posthorn.test>... no joe');
});

test('SKIP for the host name still checks the address', async () => {
  const replies = await session('127.0.0.21', ['MAIL FROM:<a@ok.example>']);
  assert.equal(replies[2], '550 5.7.1 Access denied');
});

test('SKIP for the address still checks the rate', async () => {
  const first = await session('127.0.0.22', ['MAIL FROM:<a@ok.example>']);
  assert.equal(first[2], '250 2.1.0 <a@ok.example>... Sender ok');
  const second = await rawSmtp(ph.port, ['QUIT'], { localAddress: '127.0.0.22' });
  assert.equal(second[0], '421 4.3.2 Connection rate limit exceeded.');
});

test('relay denial on PTR tempfail', async () => {
  const replies = await session('127.0.0.23', ['MAIL FROM:<a@ok.example>', 'RCPT TO:<x@remote.example>']);
  assert.equal(replies[3], '450 4.4.0 <x@remote.example>... Relaying temporarily denied. Cannot resolve PTR record for 127.0.0.23');
  const missing = await session('127.0.0.24', ['MAIL FROM:<a@ok.example>', 'RCPT TO:<x@remote.example>']);
  assert.equal(missing[3], '550 5.7.1 <x@remote.example>... Relaying denied. IP name lookup failed [127.0.0.24]');
});

test('PTR SERVFAIL is tempfail', async () => {
  const resolver = new MailResolver([`127.0.0.1:${dns.port}`]);
  assert.deepEqual(await resolver.reverse('127.0.0.23'), { kind: 'tempfail', reason: 'ESERVFAIL' });
  assert.equal((await resolver.reverse('127.0.0.24')).kind, 'nxdomain');
});

test('localhost sender from a remote client', async () => {
  const replies = await session('127.0.0.25', ['MAIL FROM:<a@localhost>', 'MAIL FROM:<a@[127.0.0.1]>', 'MAIL FROM:<a@localhost.posthorn.test>']);
  assert.equal(replies[2], '553 5.5.4 <a@localhost>... Real domain name required for sender address');
  assert.equal(replies[3], '553 5.5.4 <a@[127.0.0.1]>... Real domain name required for sender address');
  assert.equal(replies[4], '553 5.5.4 <a@localhost.posthorn.test>... Real domain name required for sender address');
  const local = await rawSmtp(ph.port, ['HELO client.example', 'MAIL FROM:<a@localhost>', 'QUIT']);
  assert.equal(local[2], '250 2.1.0 <a@localhost>... Sender ok');
});

test('IPv6 keys in full form', () => {
  const keys = addressKeys('2001:db8::25');
  assert.deepEqual(keys.slice(0, 3), ['IPv6:2001:db8:0:0:0:0:0:25', 'IPv6:2001:db8::25', 'IPv6:2001:db8:0:0:0:0:0']);
  assert.ok(keys.includes('IPv6:2001:db8'));
  assert.deepEqual(addressKeys('::1').slice(0, 2), ['IPv6:0:0:0:0:0:0:0:1', 'IPv6:::1']);
});

test('REJECT and relay message defines', async (t) => {
  const custom = await startPosthorn({
    mc: baseMc({
      dnsPort: dns.port,
      extra: [
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`blacklist_recipients')",
        "define(`confREJECT_MSG', `\"550 Go away \" $&{client_addr}')",
        "define(`confRCPTREJ_MSG', `\"550 5.1.1 No such user here\"')",
        "define(`confRELAY_MSG', `\"550 We do not relay for \" $&{client_name}')",
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => custom.stop());
  const map = 'From:rej.example\tREJECT\nTo:closed@posthorn.test\tREJECT\nConnect:127.0.0.3\tREJECT\n';
  assert.equal(makemap(path.join(custom.dir, 'access'), map).status, 0);
  const replies = await rawSmtp(custom.port, [
    'HELO client.example', 'MAIL FROM:<a@rej.example>', 'MAIL FROM:<a@ok.example>',
    'RCPT TO:<closed@posthorn.test>', 'RCPT TO:<x@remote.example>', 'QUIT',
  ]);
  assert.equal(replies[2], '550 5.0.0 <a@rej.example>... Go away 127.0.0.1');
  assert.equal(replies[4], '550 5.1.1 <closed@posthorn.test>... No such user here');
  assert.equal(replies[5], '250 2.1.5 <x@remote.example>... Recipient ok', '127.0.0.1 may relay');
  const named = await rawSmtp(custom.port, ['HELO client.example', 'MAIL FROM:<a@ok.example>', 'RCPT TO:<x@remote.example>', 'QUIT'], {
    localAddress: '127.0.0.30',
  });
  assert.equal(named[3], '550 5.7.1 <x@remote.example>... We do not relay for host30.client.example');
  const blocked = await rawSmtp(custom.port, ['HELO client.example', 'MAIL FROM:<a@ok.example>', 'QUIT'], { localAddress: '127.0.0.3' });
  assert.equal(blocked[2], '550 5.0.0 Go away 127.0.0.3');
});
