// FallBackSmartHost: the last host tried when every MX failed or DNS could not
// answer, as if it were an MX of the lowest preference.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { mxZone, quoteRe, sendToRemote } from '../helpers/e2e-setup';

const FALLBACK = "define(`confFALLBACK_SMARTHOST', `[127.0.0.4]')";

test('fallback smart host when every MX is down', async (t) => {
  // The MX hosts on 127.0.0.2 and .3 have nothing listening.
  const mailerPort = await freePortOn(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  const fallback = await startSink({ host: '127.0.0.4', port: mailerPort });
  t.after(() => fallback.close());
  const dns = await startDnsServer({
    zones: mxZone('remote.example', [
      [10, 'mx1.remote.example', '127.0.0.2'],
      [20, 'mx2.remote.example', '127.0.0.3'],
    ]),
  });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort, extra: [FALLBACK] }) });
  t.after(() => ph.stop());

  const qid = await sendToRemote(ph.port, 'all mx down');

  const [message] = await fallback.waitForMessages(1, 30_000);
  assert.deepEqual(message.to, ['bob@remote.example']);
  assert.match(message.data.toString('utf8'), /^Subject: all mx down\r$/m);
  const line = await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent.*`));
  assert.match(line[0], /relay=.*\[127\.0\.0\.4\]/);
});

test('fallback smart host when DNS answers SERVFAIL', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2', '127.0.0.4']);
  const mx = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => mx.close());
  const fallback = await startSink({ host: '127.0.0.4', port: mailerPort });
  t.after(() => fallback.close());
  const dns = await startDnsServer({
    zones: mxZone('remote.example', [[10, 'mx1.remote.example', '127.0.0.2']]),
  });
  dns.setMode('remote.example', 'servfail');
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort, extra: [FALLBACK] }) });
  t.after(() => ph.stop());

  const qid = await sendToRemote(ph.port, 'dns servfail');

  const [message] = await fallback.waitForMessages(1, 30_000);
  assert.deepEqual(message.to, ['bob@remote.example']);
  assert.match(message.data.toString('utf8'), /^Subject: dns servfail\r$/m);
  assert.equal(mx.messages.length, 0, 'the MX behind the failing zone must not be used');
  const line = await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent.*`));
  assert.match(line[0], /relay=.*\[127\.0\.0\.4\]/);
  assert.ok((dns.queries.get('remote.example/MX') ?? 0) >= 1, 'posthorn never asked for the MX');
});
