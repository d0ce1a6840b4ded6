// Timeout.queuewarn.<class> and Timeout.queuereturn.<class>: the Precedence
// header of a message picks the form (urgent, non-urgent, normal) that decides
// when its sender is warned and when the message is returned.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { freePortOn } from '../helpers/process';
import { rawSmtp } from '../helpers/clients';
import { makeMessage, mxZone, quoteRe } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

async function send(port: number, sender: string, subject: string, headers: string[]): Promise<string> {
  const data = makeMessage({ from: `${sender}@posthorn.test`, to: 'bob@remote.example', subject, body: 'Body.', headers });
  const replies = await rawSmtp(port, [
    'EHLO client.posthorn.test', `MAIL FROM:<${sender}@posthorn.test>`, 'RCPT TO:<bob@remote.example>', 'DATA', data + '.\r\n', 'QUIT',
  ]);
  const match = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(replies[5] ?? '');
  assert.ok(match, `not accepted: ${JSON.stringify(replies)}`);
  return match[1];
}

test('Precedence picks the queuewarn and queuereturn form', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({
      dnsPort: dns.port,
      mailerPort,
      extra: [
        ...NO_LOAD_LIMITS,
        "define(`confTO_QUEUEWARN', `2h')",
        "define(`confTO_QUEUEWARN_NONURGENT', `1s')",
        "define(`confTO_QUEUERETURN_URGENT', `1s')",
      ],
    }),
  });
  t.after(() => ph.stop());

  // The next hop is down: all three are deferred.
  const bulk = await send(ph.port, 'bulky', 'bulk', ['Precedence: bulk']);
  const urgent = await send(ph.port, 'hasty', 'urgent', ['Precedence: special-delivery']);
  const normal = await send(ph.port, 'plain', 'normal', []);
  for (const id of [bulk, urgent, normal]) {
    await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);
  }

  await new Promise((resolve) => setTimeout(resolve, 1100));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);

  // Non-urgent (Precedence: bulk): warned after 1 s, not returned.
  const warning = await ph.waitForMailbox('bulky', 'Action: delayed', 20_000);
  assert.match(warning, /^Subject: Warning: could not send message for past 1 second$/m);
  assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${bulk}`)), 'bulk message still queued');

  // Urgent (Precedence: special-delivery): returned after 1 s.
  const bounce = await ph.waitForMailbox('hasty', 'Action: failed', 20_000);
  assert.match(bounce, /Cannot send message for 1 second/);
  assert.ok(!fs.existsSync(path.join(ph.queueDir, `qf${urgent}`)), 'urgent message returned and removed');

  // Normal: the plain options (warn after 2 hours, return after 5 days) apply.
  assert.equal(ph.mailbox('plain'), '', 'no notice for normal precedence');
  assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${normal}`)), 'normal message still queued');
});
