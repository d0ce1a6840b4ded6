// STARTTLS on LMTP over TCP: local mail goes through the cyrusv2 mailer
// ("TCP host port") to a real Dovecot LMTP service that offers STARTTLS, and
// a TLS_Srv: requirement on that host decides whether it is delivered.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { freePortOn } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { startDovecot } from '../helpers/dovecot';
import { textAccessDbMc } from '../helpers/tls-setup';
import { makeTestCerts, type TestCerts } from '../tls/certs';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

test('dovecot lmtp over TCP with STARTTLS and TLS_Srv:', async (t) => {
  const bin = requirePeer(t, 'dovecot');
  if (bin === undefined) return;
  const port = await freePortOn(['127.0.0.1']);
  const dovecot = await startDovecot(t, bin, { port, tls: certs.server });

  for (const [requirement, user, outcome] of [
    ['VERIFY:128', 'alice', 'sent'],
    ['VERIFY+CN:other.posthorn.test', 'bob', 'deferred'],
  ] as const) {
    const accessPath = path.join(certs.dir, `access-lmtp-${user}`);
    fs.writeFileSync(accessPath, `TLS_Srv:127.0.0.1 ${requirement}\n`);
    const mc = baseMc({
      extra: [
        "define(`confLOG_LEVEL', `12')",
        `define(\`confCACERT', \`${certs.caCert}')`,
        textAccessDbMc(accessPath),
        "define(`confLOCAL_MAILER', `cyrusv2')",
        `define(\`CYRUSV2_MAILER_ARGS', \`TCP 127.0.0.1 ${port}')`,
        "MAILER(`cyrusv2')",
      ],
    });
    const ph = await startPosthorn({ mc });
    t.after(() => ph.stop());
    const sent = await sendRaw({
      port: ph.port,
      from: 'sender@remote.example',
      to: [`${user}@posthorn.test`],
      data: makeMessage({ from: 'sender@remote.example', to: `${user}@posthorn.test`, subject: 'lmtp tls', body: 'Over LMTP and TLS.' }),
    });
    assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
    const q = quoteRe(sent.queueId);
    await ph.waitForLog(/STARTTLS=client, relay=127\.0\.0\.1, version=TLSv1\.[23], verify=OK, /, 30_000);
    if (outcome === 'sent') {
      await ph.waitForLog(new RegExp(`${q}: to=<${user}@posthorn\\.test>, .*stat=Sent`), 30_000);
      const messages = dovecot.messages(user);
      assert.equal(messages.length, 1, dovecot.log());
      assert.match(messages[0], /^Subject: lmtp tls$/m);
    } else {
      await ph.waitForLog(new RegExp(`${q}: to=<${user}@posthorn\\.test>, .*stat=Deferred: 403 4\\.7\\.0 CN mx\\.posthorn\\.test does not match other\\.posthorn\\.test`), 30_000);
      assert.equal(dovecot.messages(user).length, 0);
    }
  }
});
