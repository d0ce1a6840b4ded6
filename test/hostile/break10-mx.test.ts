// Hostile DNS answers for the MX lookup, from a loopback name server: an MX
// that names this host, hundreds of MX records, and exchange names with
// control bytes that must not reach the log or the bounce as they are.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type DnsRecord } from '../helpers/dns-server';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { freePort } from '../helpers/process';
import { startHop } from './break10-hop';

async function submit(ph: Posthorn, rcpt: string): Promise<void> {
  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<snd@posthorn.test>',
    `RCPT TO:<${rcpt}>`,
    'DATA',
    'Subject: hostile dns\r\n\r\nBody line.\r\n.',
    'QUIT',
  ]);
  assert.match(replies[replies.length - 2] ?? '', /^250 /, `submission replies: ${replies.join(' | ')}`);
}

test('MX naming this host bounces', { timeout: 60_000 }, async (t) => {
  // Nothing listens on the mailer port. sendmail never connects, because the
  // only MX is one of its own names (class w), so getmxrr() fails with
  // "MX list for ... points back to ..."
  const mailerPort = await freePort('127.0.0.1');
  const dns = await startDnsServer({
    zones: {
      'remote.test': [{ type: 'MX', preference: 10, exchange: 'mx.posthorn.test' }],
      'mx.posthorn.test': [{ type: 'A', address: '127.0.0.1' }],
    },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());

  await submit(ph, 'bob@remote.test');
  const line = (await ph.waitForLog(/to=<bob@remote\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(line);
  assert.match(ph.logs(), /MX list for remote\.test\. points back to mx\.posthorn\.test/);
  assert.match(line, /dsn=5\.3\.5, stat=Local configuration error/);
});

test('three hundred MX records', { timeout: 120_000 }, async (t) => {
  const hop = await startHop({});
  t.after(() => hop.close());
  const zone: Record<string, DnsRecord[]> = { 'remote.test': [] };
  // 299 exchanges with no address, then the one that works, all of one preference.
  for (let i = 0; i < 299; i++) {
    zone['remote.test'].push({ type: 'MX', preference: 10 + i, exchange: `mx${i}.remote.test` });
  }
  zone['remote.test'].push({ type: 'MX', preference: 1000, exchange: 'last.remote.test' });
  zone['last.remote.test'] = [{ type: 'A', address: '127.0.0.1' }];
  const dns = await startDnsServer({ zones: zone });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: hop.port }) });
  t.after(() => ph.stop());

  await submit(ph, 'bob@remote.test');
  const line = (await ph.waitForLog(/to=<bob@remote\.test>.*stat=.*/, 100_000))[0];
  const addressQueries = [...dns.queries.keys()].filter((k) => /^mx\d+\.remote\.test\/A$/.test(k)).length;
  t.diagnostic(`${line}\nA queries for listed exchanges: ${addressQueries}; messages at the hop: ${hop.messages.length}`);
  // sendmail 8.13 keeps at most MAXMXHOSTS (100) MX records.
  assert.ok(addressQueries <= 100, `posthorn looked up ${addressQueries} MX hosts`);
});

test('MX name with control bytes', { timeout: 60_000 }, async (t) => {
  const hop = await startHop({
    command: (verb, _line, s) => {
      if (verb !== 'RCPT') return false;
      s.write('550 5.1.1 no such user\r\n');
      return true;
    },
  });
  t.after(() => hop.close());
  const evil = 'mx\r\nX-Injected: yes\r\n\x1b[2J.remote.test';
  const dns = await startDnsServer({
    zones: {
      'remote.test': [{ type: 'MX', preference: 10, exchange: evil }],
      [evil]: [{ type: 'A', address: '127.0.0.1' }],
    },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: hop.port }) });
  t.after(() => ph.stop());

  await submit(ph, 'bob@remote.test');
  const line = (await ph.waitForLog(/to=<bob@remote\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(JSON.stringify(line));
  const dsn = await ph.waitForMailbox('snd', '--\n', 30_000).catch(() => ph.mailbox('snd'));
  t.diagnostic(JSON.stringify(dsn.split('\n').filter((l) => /Injected|Remote-MTA|\x1b/.test(l))));
  assert.doesNotMatch(ph.logs(), /[\x00-\x08\x0b-\x1f\x7f]/, 'control bytes of the MX name in the log');
  assert.doesNotMatch(dsn, /^X-Injected: yes/m, 'the MX name broke a line of the bounce');
});

test('554 greeting tries next MX', { timeout: 60_000 }, async (t) => {
  const port = await freePort('127.0.0.1');
  // Two hops on one port: 127.0.0.2 greets with 554, 127.0.0.3 takes the message.
  const bad = await startHop({ greeting: '554 5.3.2 not now\r\n', host: '127.0.0.2', port });
  const good = await startHop({ host: '127.0.0.3', port });
  t.after(() => Promise.all([bad.close(), good.close()]).then(() => undefined));
  const dns = await startDnsServer({
    zones: {
      'remote.test': [
        { type: 'MX', preference: 10, exchange: 'mx1.remote.test' },
        { type: 'MX', preference: 20, exchange: 'mx2.remote.test' },
      ],
      'mx1.remote.test': [{ type: 'A', address: '127.0.0.2' }],
      'mx2.remote.test': [{ type: 'A', address: '127.0.0.3' }],
    },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: port }) });
  t.after(() => ph.stop());

  await submit(ph, 'bob@remote.test');
  const line = (await ph.waitForLog(/to=<bob@remote\.test>.*stat=.*/, 30_000))[0];
  t.diagnostic(line);
  assert.equal(good.messages.length, 1, 'sendmail 8.13 goes on to the next MX after a 5xx greeting');
  assert.match(line, /stat=Sent/);
});
