// Delivery to a remote domain through its MX records, with a recording sink as
// the next hop on its own loopback address.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../helpers/sink';
import { freePortOn, waitFor } from '../helpers/process';
import { quoteRe, sendRemoteMessage, sendToRemote, startPosthornWithDns, startSinkHop } from '../helpers/e2e-setup';

test('delivers through the MX host', async (t) => {
  const { ph, sink } = await startSinkHop(t);

  const sent = await sendRemoteMessage(ph.port, 'mx delivery', 'The MX route works.\nSecond line.');
  assert.match(sent.replies[0], /^220 /);
  assert.match(sent.replies[2], /^250 2\.1\.0 /);
  assert.match(sent.replies[3], /^250 2\.1\.5 /);
  assert.match(sent.replies[4], /^354 /);
  assert.notEqual(sent.queueId, '', `no queue id in "${sent.accepted}"`);

  const [message] = await sink.waitForMessages(1, 20_000);
  const text = message.data.toString('utf8');
  assert.equal(message.from, 'alice@posthorn.test');
  assert.deepEqual(message.to, ['bob@remote.example']);
  assert.ok(text.includes('The MX route works.\r\nSecond line.\r\n'), text);
  assert.match(text, /^Received: from client\.posthorn\.test /m);
  assert.match(text, new RegExp(`by mx\\.posthorn\\.test .* id ${quoteRe(sent.queueId)}`, 's'));
  assert.match(text, /^Subject: mx delivery\r$/m);

  const qid = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${qid}: to=<bob@remote\\.example>, .*stat=Sent`));
  const logs = ph.logs();
  assert.match(
    logs,
    new RegExp(
      `posthorn\\[\\d+\\]: ${qid}: from=<alice@posthorn\\.test>, size=\\d+, class=0, nrcpts=1, ` +
        `msgid=<mx-delivery@client\\.posthorn\\.test>, proto=ESMTP, daemon=MTA, ` +
        `relay=localhost \\[127\\.0\\.0\\.1\\]`,
    ),
  );
  assert.match(
    logs,
    new RegExp(
      `${qid}: to=<bob@remote\\.example>, delay=[0-9:+]+, xdelay=[0-9:+]+, mailer=esmtp, ` +
        `pri=\\d+, relay=mx1\\.remote\\.example\\. \\[127\\.0\\.0\\.2\\], dsn=2\\.0\\.0, stat=Sent \\(`,
    ),
  );
  // The files are removed just after the to= line is logged: wait for that, bounded.
  const leftover = () => ph.queueFiles().filter((f) => f.endsWith(sent.queueId));
  await waitFor('the queue files to be removed', () => leftover().length === 0, 5_000).catch(() => undefined);
  assert.deepEqual(leftover(), []);
});

test('tries the next MX after a refused connection', async (t) => {
  // Nothing listens on 127.0.0.3, so the preferred MX refuses the connection.
  const mailerPort = await freePortOn(['127.0.0.2', '127.0.0.3']);
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const { ph, dns } = await startPosthornWithDns(t, {
    mailerPort,
    mx: [
      [10, 'mx1.remote.example', '127.0.0.3'],
      [20, 'mx2.remote.example', '127.0.0.2'],
    ],
  });

  const queueId = await sendToRemote(ph.port, 'second mx', 'Delivered by the second MX.');

  const [message] = await sink.waitForMessages(1, 20_000);
  assert.ok(message.data.toString('utf8').includes('Delivered by the second MX.'));
  assert.deepEqual(message.to, ['bob@remote.example']);

  const qid = quoteRe(queueId);
  const line = await ph.waitForLog(new RegExp(`${qid}: to=<bob@remote\\.example>, .*stat=Sent.*`));
  assert.match(line[0], /relay=mx2\.remote\.example\. \[127\.0\.0\.2\]/);
  assert.ok((dns.queries.get('remote.example/MX') ?? 0) >= 1, 'posthorn never asked for the MX');
});
