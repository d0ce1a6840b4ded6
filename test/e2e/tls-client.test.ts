// STARTTLS when posthorn delivers: Postfix offering STARTTLS as the next hop,
// scripted next hops that lack STARTTLS, answer it with 454, break the
// handshake or present an untrusted certificate, and the access map entries
// Try_TLS:, TLS_Srv: and TLS_Rcpt: with passing and failing requirements.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { freePortOn } from '../helpers/process';
import { makeMessage, mxZone, quoteRe, sendRaw, startPostfixHop } from '../helpers/e2e-setup';
import { clientTlsMc, textAccessDbMc } from '../helpers/tls-setup';
import { makeTestCerts, type TestCerts } from '../tls/certs';
import { startTlsSink } from '../tls/tls-sink';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

test('Postfix next hop with STARTTLS', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const accessPath = path.join(certs.dir, 'access-postfix');
  fs.writeFileSync(accessPath, 'TLS_Srv:mx.remote.example VERIFY:128\n');
  const { ph, postfix } = await startPostfixHop(t, { certs, mc: [textAccessDbMc(accessPath)] });

  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'tls hop', body: 'Encrypted to Postfix.' }),
  });
  assert.notEqual(sent.queueId, '', sent.accepted);
  const [message] = await postfix.waitForMessages(1, 30_000);
  assert.ok(message.includes('Encrypted to Postfix.'), message);
  assert.match(message, /\(using TLSv1\.3 with cipher \S+/);
  assert.match(postfix.logs(), /Trusted TLS connection established from \S+\[127\.0\.0\.1\]/);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.remote\.example\., version=TLSv1\.3, verify=OK, cipher=\S+, bits=\d+\/\d+/);
  await ph.waitForLog(new RegExp(`${quoteRe(sent.queueId)}: to=<bob@remote\\.example>, .*stat=Sent`));
});

interface Hop {
  domain: string;
  address: string;
  starttls?: 'handshake' | 'garbage' | string;
  cert?: { cert: string; key: string };
}

test('client rulesets against scripted next hops', async (t) => {
  const hops: Hop[] = [
    { domain: 'tls.example', address: '127.0.0.21', starttls: 'handshake', cert: certs.server },
    { domain: 'plain.example', address: '127.0.0.22' },
    { domain: 'broken.example', address: '127.0.0.23', starttls: 'garbage', cert: certs.server },
    { domain: 'fail.example', address: '127.0.0.24', starttls: 'handshake', cert: certs.stranger },
    { domain: 'temp.example', address: '127.0.0.25', starttls: '454 4.7.0 TLS not available due to temporary reason', cert: certs.server },
    { domain: 'notry.example', address: '127.0.0.26', starttls: 'handshake', cert: certs.server },
    { domain: 'open.example', address: '127.0.0.27' },
  ];
  const port = await freePortOn(hops.map((h) => h.address));
  const sinks = new Map<string, Awaited<ReturnType<typeof startTlsSink>>>();
  for (const hop of hops) {
    const sink = await startTlsSink({ host: hop.address, port, starttls: hop.starttls, cert: hop.cert?.cert, key: hop.cert?.key });
    sinks.set(hop.domain, sink);
    t.after(() => sink.close());
  }
  const zones = Object.assign({}, ...hops.map((h) => mxZone(h.domain, [[10, `mx.${h.domain}`, h.address]])));
  const dns = await startDnsServer({ zones });
  t.after(() => dns.close());

  const accessPath = path.join(certs.dir, 'access-hops');
  fs.writeFileSync(accessPath, [
    'TLS_Srv:mx.tls.example VERIFY:128+CN:mx.posthorn.test',
    'TLS_Srv:mx.plain.example ENCR:128',
    'TLS_Srv:mx.fail.example PERM+VERIFY',
    'TLS_Srv:mx.temp.example VERIFY',
    'Try_TLS:mx.notry.example NO',
    'TLS_Rcpt:secret@tls.example ENCR:512',
    'TLS_Rcpt:cn@tls.example VERIFY+CN',
    'TLS_Rcpt:cs@tls.example PERM+ENCR:128+CS:/C=DE/O=Posthorn+20Test/CN=mx.posthorn.test',
    'TLS_Rcpt:ci@tls.example PERM+VERIFY+CI:/C=DE/CN=Other',
    'TLS_Rcpt:open.example VERIFY',
    '',
  ].join('\n'));
  const mc = [...clientTlsMc(certs), textAccessDbMc(accessPath)];
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: port, extra: mc }) });
  t.after(() => ph.stop());

  const send = async (to: string[]): Promise<string> => {
    const sent = await sendRaw({
      port: ph.port,
      from: 'alice@posthorn.test',
      to,
      data: makeMessage({ from: 'alice@posthorn.test', to: to[0], subject: 'hop test', body: `to ${to.join(' ')}` }),
    });
    assert.notEqual(sent.queueId, '', sent.accepted);
    return quoteRe(sent.queueId);
  };
  const stat = (id: string, rcpt: string, text: string): RegExp =>
    new RegExp(`${id}: to=<${quoteRe(rcpt)}>, .*stat=${quoteRe(text)}`);

  // TLS with a verified certificate; tls_rcpt keeps back three recipients.
  const tlsId = await send(['bob@tls.example', 'secret@tls.example', 'cn@tls.example', 'cs@tls.example', 'ci@tls.example']);
  const [tlsMessage] = await sinks.get('tls.example')!.waitForMessages(1);
  assert.equal(tlsMessage.tls, true);
  assert.deepEqual(tlsMessage.to, ['bob@tls.example', 'cs@tls.example']);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.tls\.example\., version=TLSv1\.3, verify=OK, /);
  await ph.waitForLog(stat(tlsId, 'secret@tls.example', 'Deferred: 403 4.7.0 encryption too weak 256 less than 512'));
  await ph.waitForLog(stat(tlsId, 'cn@tls.example', 'Deferred: 403 4.7.0 CN mx.posthorn.test does not match mx.tls.example'));
  await ph.waitForLog(stat(tlsId, 'ci@tls.example', '503 5.7.0 Cert Issuer /C=DE/O=Posthorn+20Test/CN=Posthorn+20Test+20CA does not match /C=DE/CN=Other'));
  assert.deepEqual(sinks.get('tls.example')!.commands.filter((c) => c.startsWith('EHLO') || c.startsWith('tls EHLO')).length, 2);

  // No STARTTLS offered: an ENCR requirement keeps the message queued, never sent in clear text.
  const plainId = await send(['bob@plain.example']);
  await ph.waitForLog(stat(plainId, 'bob@plain.example', 'Deferred: 403 4.7.0 encryption too weak 0 less than 128'));
  assert.equal(sinks.get('plain.example')!.messages.length, 0);

  // A broken handshake is retried without STARTTLS.
  const brokenId = await send(['bob@broken.example']);
  const [clear] = await sinks.get('broken.example')!.waitForMessages(1);
  assert.equal(clear.tls, false);
  await ph.waitForLog(/STARTTLS=client, error: connect failed=-1, SSL_error=1, timedout=0, errno=-?\d+$/m);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.broken\.example\. \[127\.0\.0\.23\]: /);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.broken\.example\. \[127\.0\.0\.23\], TLS handshake failed, retrying without STARTTLS/);
  await ph.waitForLog(stat(brokenId, 'bob@broken.example', 'Sent'));

  // An untrusted server certificate fails PERM+VERIFY: the recipient bounces.
  const failId = await send(['bob@fail.example']);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.fail\.example\., version=TLSv1\.3, verify=FAIL, /);
  await ph.waitForLog(stat(failId, 'bob@fail.example', '503 5.7.0 authentication failed'));
  assert.equal(sinks.get('fail.example')!.messages.length, 0);

  // 454 to STARTTLS gives ${verify} TEMP.
  const tempId = await send(['bob@temp.example']);
  await ph.waitForLog(stat(tempId, 'bob@temp.example', 'Deferred: 403 4.7.0 authentication failure TEMP'));
  assert.equal(sinks.get('temp.example')!.messages.length, 0);

  // Try_TLS: NO skips STARTTLS although it is offered.
  await send(['bob@notry.example']);
  const [skipped] = await sinks.get('notry.example')!.waitForMessages(1);
  assert.equal(skipped.tls, false);
  assert.ok(!sinks.get('notry.example')!.commands.includes('STARTTLS'));

  // A TLS_Rcpt: domain entry: no STARTTLS offered, so ${verify} is NONE.
  const openId = await send(['bob@open.example']);
  await ph.waitForLog(stat(openId, 'bob@open.example', 'Deferred: 403 4.7.0 other side does not support STARTTLS'));
  assert.equal(sinks.get('open.example')!.messages.length, 0);
});
