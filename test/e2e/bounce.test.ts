// A permanent failure for one recipient: the other recipient is delivered and a
// DSN (RFC 3464) goes back to the sender's local mailbox.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMessage, quoteRe, sendRaw, startSinkHop } from '../helpers/e2e-setup';
import { baseMc, startPosthorn } from '../helpers/posthorn';

test('5xx for one recipient bounces to sender', async (t) => {
  const { ph, sink } = await startSinkHop(t, {
    sink: {
      rcptReply: (address) =>
        address === 'bad@remote.example' ? `550 5.1.1 <${address}>... User unknown` : '250 2.1.5 Recipient ok',
    },
  });

  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['good@remote.example', 'bad@remote.example'],
    data: makeMessage({
      from: 'alice@posthorn.test',
      to: 'good@remote.example, bad@remote.example',
      subject: 'half bounces',
      body: 'One of two recipients is unknown.',
    }),
  });
  const qid = sent.queueId;
  assert.notEqual(qid, '', `no queue id in "${sent.accepted}"`);

  const [message] = await sink.waitForMessages(1, 20_000);
  assert.deepEqual(message.to, ['good@remote.example']);

  const dsn = await ph.waitForMailbox('alice', 'Subject: half bounces', 30_000);
  assert.match(dsn, /^From MAILER-DAEMON /m, 'the DSN has the null envelope sender');
  assert.match(dsn, /^To: .*alice@posthorn\.test/im);
  assert.match(dsn, /^From: .*MAILER-DAEMON@mx\.posthorn\.test/im);
  assert.match(dsn, /^Content-Type: multipart\/report;.*report-type="?delivery-status"?/ims);
  assert.match(dsn, /^Content-Type: message\/delivery-status/im);
  assert.match(dsn, /^Reporting-MTA: dns; ?mx\.posthorn\.test/im);
  assert.match(dsn, /^Final-Recipient: rfc822; ?bad@remote\.example/im);
  assert.match(dsn, /^Action: failed/im);
  assert.match(dsn, /^Status: 5\.1\.1/im);
  assert.match(dsn, /^Remote-MTA: dns; ?mx1\.remote\.example/im);
  assert.match(dsn, /^Diagnostic-Code: smtp; ?550 5\.1\.1 <bad@remote\.example>\.\.\. User unknown/im);
  assert.doesNotMatch(dsn, /^Final-Recipient: rfc822; ?good@remote\.example/im);
  assert.ok(dsn.includes('Subject: half bounces'), 'the DSN returns the original headers');

  const logs = ph.logs();
  assert.match(
    logs,
    new RegExp(`${quoteRe(qid)}: to=<bad@remote\\.example>, .*dsn=5\\.1\\.1, stat=User unknown`),
  );
  assert.match(logs, new RegExp(`${quoteRe(qid)}: to=<good@remote\\.example>, .*dsn=2\\.0\\.0, stat=Sent`));
});

test('SMART_HOST loop bounces at once', async (t) => {
  // sendmail's "mail loops back to me": the next hop greets with this host's name.
  // The daemon relays to its own port, so the next hop greets with its own name.
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`SMART_HOST', `[127.0.0.1]')", "define(`RELAY_MAILER_ARGS', `TCP $h @PORT@')"] }),
  });
  t.after(() => ph.stop());
  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject: 'round and round', body: 'x' }),
  });
  assert.match(sent.accepted, /^250 /);

  const dsn = await ph.waitForMailbox('alice', 'Subject: round and round', 30_000);
  assert.match(dsn, /^Status: 5\.3\.5/im);
  assert.match(dsn, /^Diagnostic-Code: smtp; ?553 5\.3\.5 .*config error: mail loops back to me \(MX problem\?\)/im);
  const log = ph.logs();
  assert.match(log, new RegExp(`${quoteRe(sent.queueId)}: to=<bob@remote\\.example>.*dsn=5\\.3\\.5, stat=Local configuration error`));
  // One hop, not 25: the message was never passed back to itself.
  assert.equal(log.match(/from=<alice@posthorn\.test>/g)?.length, 1);
});
