// FEATURE(`greet_pause') end to end: early talkers (plain SMTP and a TLS
// ClientHello) get the 554 greeting and a null server; quiet clients and
// exempt ones (by host name, address, prefix) are greeted normally.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp, smtplibSend } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { captureClientHello, makemap } from './policy-support';

const GREET_ACCESS = [
  'GreetPause:127.0.0.7\t0',
  'GreetPause:127.0.1\t0',
  'GreetPause:friendly.example\t0',
  '',
].join('\n');

async function startGreetPause(t: { after(fn: () => Promise<void>): void }): Promise<Posthorn> {
  const dns = await startDnsServer({
    zones: {
      '8.0.0.127.in-addr.arpa': [{ type: 'PTR', name: 'mx.friendly.example' }],
      'mx.friendly.example': [{ type: 'A', address: '127.0.0.8' }],
    },
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({
      dnsPort: dns.port,
      extra: [
        "define(`confPID_FILE', `@DIR@/pid')",
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`greet_pause', `1500')",
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  assert.equal(makemap(path.join(ph.dir, 'access'), GREET_ACCESS).status, 0);
  return ph;
}

test('early talker gets 554 and null server', async (t) => {
  const ph = await startGreetPause(t);
  const replies = await rawSmtp(ph.port, ['MAIL FROM:<a@c.example>', 'RCPT TO:<alice@posthorn.test>', 'RSET', 'QUIT'], {
    localAddress: '127.0.0.2',
    early: ['EHLO early.example'],
  });
  assert.equal(replies[0], '554 mx.posthorn.test ESMTP not accepting messages');
  assert.equal(replies[1], '250-mx.posthorn.test Hello [127.0.0.2], pleased to meet you\n250 ENHANCEDSTATUSCODES');
  assert.equal(replies[2], '550 5.0.0 Command rejected');
  assert.equal(replies[3], '550 5.0.0 Command rejected');
  assert.equal(replies[4], '250 2.0.0 Reset state');
  assert.match(replies[5], /^221 2\.0\.0 /);
  await ph.waitForLog(/rejecting commands from \[127\.0\.0\.2\] \[127\.0\.0\.2\] due to pre-greeting traffic after \d+ seconds/);
});

test('TLS ClientHello counts as early talk', async (t) => {
  const ph = await startGreetPause(t);
  const hello = await captureClientHello();
  const replies = await rawSmtp(ph.port, [], { localAddress: '127.0.0.2', early: [hello], earlyReplies: 0 });
  assert.equal(replies[0], '554 mx.posthorn.test ESMTP not accepting messages');
});

test('quiet client is greeted after the pause', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const ph = await startGreetPause(t);
  const result = await smtplibSend({
    port: ph.port,
    python,
    sourceAddress: '127.0.0.2',
    from: 'carol@client.example',
    to: ['alice@posthorn.test'],
    data: 'Subject: patient\r\n\r\nwaited for the greeting\r\n',
  });
  assert.equal(result.greeting?.code, 220);
  assert.equal(result.rcpt[0].code, 250);
  assert.equal(result.data?.code, 250);
});

test('greet pause exemptions by address, prefix, host', async (t) => {
  const ph = await startGreetPause(t);
  for (const localAddress of ['127.0.0.7', '127.0.1.5', '127.0.0.8']) {
    const replies = await rawSmtp(ph.port, ['QUIT'], { localAddress, early: ['NOOP'] });
    assert.match(replies[0], /^220 mx\.posthorn\.test ESMTP /, `${localAddress} is exempt`);
    assert.equal(replies[1], '250 2.0.0 OK', `${localAddress} pipelined NOOP is answered`);
  }
  const replies = await rawSmtp(ph.port, ['NOOP', 'QUIT'], { localAddress: '127.0.0.9' });
  assert.match(replies[0], /^220 /);
});
