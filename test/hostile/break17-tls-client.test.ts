// The client side of STARTTLS compared with sendmail 8.17 delivering to the
// same scripted next hops: the ${verify} failure keeps its 4.7.0 status, a
// 421 reply to STARTTLS ends the session (no mail in clear text), and the
// ruleset log lines of tls_server, tls_rcpt and try_tls name the host and
// the recipient as sendmail's rscheck() does.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { makeMessage, mxZone, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { clientTlsMc, textAccessDbMc } from '../helpers/tls-setup';
import { makeTestCerts, type TestCerts } from '../tls/certs';
import { startTlsSink, type TlsSink } from '../tls/tls-sink';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

test('client STARTTLS failures match sendmail', async (t) => {
  const hops = [
    { domain: 'expired.example', address: '127.0.0.171', starttls: 'handshake', cert: certs.expired },
    { domain: 'closing.example', address: '127.0.0.172', starttls: '421 4.3.0 closing now', cert: certs.server },
    { domain: 'stranger.example', address: '127.0.0.173', starttls: 'handshake', cert: certs.stranger },
    { domain: 'notry.example', address: '127.0.0.174', starttls: 'handshake', cert: certs.server },
  ];
  const port = await freePortOn(hops.map((h) => h.address));
  const sinks = new Map<string, TlsSink>();
  for (const hop of hops) {
    const sink = await startTlsSink({ host: hop.address, port, starttls: hop.starttls, cert: hop.cert.cert, key: hop.cert.key });
    sinks.set(hop.domain, sink);
    t.after(() => sink.close());
  }
  const zones = Object.assign({}, ...hops.map((h) => mxZone(h.domain, [[10, `mx.${h.domain}`, h.address]])));
  const dns = await startDnsServer({ zones });
  t.after(() => dns.close());

  const accessPath = path.join(certs.dir, 'access-break17');
  fs.writeFileSync(accessPath, [
    'TLS_Srv:mx.expired.example VERIFY',
    'TLS_Rcpt:stranger.example VERIFY',
    'Try_TLS:mx.notry.example NO',
    '',
  ].join('\n'));
  const mc = [...clientTlsMc(certs), textAccessDbMc(accessPath), "define(`confLOG_LEVEL', `9')"];
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: port, extra: mc }) });
  t.after(() => ph.stop());

  const send = async (to: string): Promise<string> => {
    const sent = await sendRaw({
      port: ph.port,
      from: 'alice@posthorn.test',
      to: [to],
      data: makeMessage({ from: 'alice@posthorn.test', to, subject: 'break17', body: `to ${to}` }),
    });
    assert.notEqual(sent.queueId, '', sent.accepted);
    return quoteRe(sent.queueId);
  };

  // An expired certificate fails TLS_Srv: VERIFY. sendmail 8.17 logs
  // "ruleset=tls_server, arg1=FAIL, relay=<host>, reject=454 4.7.0 authentication failed"
  // and "dsn=4.7.0, stat=Deferred: 454 4.7.0 authentication failed". Posthorn keeps 8.13's 403.
  const expiredId = await send('bob@expired.example');
  await ph.waitForLog(new RegExp(`${expiredId}: ruleset=tls_server, arg1=FAIL, relay=mx\\.expired\\.example, reject=403 4\\.7\\.0 authentication failed$`, 'm'));
  await ph.waitForLog(new RegExp(`${expiredId}: to=<bob@expired\\.example>, .*dsn=4\\.7\\.0, stat=Deferred: 403 4\\.7\\.0 authentication failed$`, 'm'));
  assert.equal(sinks.get('expired.example')!.messages.length, 0);

  // 421 to STARTTLS: the server is closing. sendmail defers with the 421 reply
  // ("stat=Deferred: 421 4.3.0 ...") and sends no MAIL, also when the server
  // keeps the connection open.
  const closingId = await send('bob@closing.example');
  await ph.waitForLog(new RegExp(`${closingId}: to=<bob@closing\\.example>, .*stat=Deferred: 421 4\\.3\\.0 closing now$`, 'm'));
  const closing = sinks.get('closing.example')!;
  assert.equal(closing.messages.length, 0);
  assert.ok(!closing.commands.some((c) => /^MAIL /i.test(c)), closing.commands.join('\n'));

  // tls_rcpt: sendmail logs the address without angle brackets and the host
  // name with its dot: "ruleset=tls_rcpt, arg1=<address>, relay=<host>., reject=...".
  const strangerId = await send('bob@stranger.example');
  await ph.waitForLog(new RegExp(`${strangerId}: ruleset=tls_rcpt, arg1=bob@stranger\\.example, relay=mx\\.stranger\\.example\\., reject=403 4\\.7\\.0 authentication failed$`, 'm'));
  await ph.waitForLog(new RegExp(`${strangerId}: to=<bob@stranger\\.example>, .*dsn=4\\.7\\.0, stat=Deferred: 403 4\\.7\\.0 authentication failed$`, 'm'));

  // Try_TLS: NO: sendmail logs try_tls's error although the mail goes on in clear text.
  const notryId = await send('bob@notry.example');
  await ph.waitForLog(new RegExp(`${notryId}: ruleset=try_tls, arg1=mx\\.notry\\.example, relay=mx\\.notry\\.example, reject=550 5\\.7\\.1 bob@notry\\.example\\.\\.\\. do not try TLS with mx\\.notry\\.example \\[127\\.0\\.0\\.174\\]$`, 'm'));
  await ph.waitForLog(new RegExp(`${notryId}: to=<bob@notry\\.example>, .*stat=Sent`));
  const [clear] = await sinks.get('notry.example')!.waitForMessages(1);
  assert.equal(clear.tls, false);
});
