// Postfix as a real peer: as the next hop that receives posthorn's mail into a
// Maildir, and as a sending MTA that relays to posthorn.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostfix } from '../helpers/postfix';
import { requirePeer } from '../helpers/peers';
import { freePortOn, waitFor } from '../helpers/process';
import {
  makeMessage,
  quoteRe,
  sendRaw,
  sendToRemote,
  startPosthornWithDns,
  startPostfixHop,
  startRemotePostfix,
} from '../helpers/e2e-setup';

test('Postfix receives as the next hop', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const { ph, postfix } = await startPostfixHop(t);

  const queueId = await sendToRemote(ph.port, 'to postfix', 'Postfix stores this in its Maildir.');

  const [message] = await postfix.waitForMessages(1, 30_000);
  assert.ok(message.includes('Postfix stores this in its Maildir.'), message);
  assert.match(message, /^Subject: to postfix$/m);
  assert.match(message, new RegExp(`by mx\\.posthorn\\.test .* id ${quoteRe(queueId)}`, 's'));
  assert.match(message, /^Return-Path: <alice@posthorn\.test>$/m);
  // Postfix logs the delivery after the file is in the Maildir.
  await waitFor('the delivery in the Postfix log', () => /to=<bob@remote\.example>, relay=virtual, .*status=sent/.test(postfix.logs()), 20_000);
  const relay = 'relay=mx\\.remote\\.example\\. \\[127\\.0\\.0\\.4\\], dsn=2\\.0\\.0, stat=Sent';
  await ph.waitForLog(new RegExp(`${quoteRe(queueId)}: to=<bob@remote\\.example>, .*${relay}`));
});

test('Postfix relays into posthorn', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const { ph } = await startPosthornWithDns(t, { mx: [] });
  const postfixPort = await freePortOn(['127.0.0.5']);
  const postfix = await startPostfix({
    port: postfixPort,
    addr: '127.0.0.5',
    mode: 'relay',
    relayTo: `127.0.0.1:${ph.port}`,
  });
  t.after(() => postfix.stop());

  const sent = await sendRaw({
    port: postfixPort,
    host: '127.0.0.5',
    from: 'dave@client.example',
    to: ['alice@posthorn.test'],
    data: makeMessage({
      from: 'dave@client.example',
      to: 'alice@posthorn.test',
      subject: 'through postfix',
      body: 'Relayed by Postfix to posthorn.',
    }),
  });
  assert.match(sent.accepted, /^250 2\.0\.0 Ok: queued as /);

  const mbox = await ph.waitForMailbox('alice', 'Relayed by Postfix to posthorn.', 30_000);
  assert.ok(mbox.includes('Relayed by Postfix to posthorn.'), mbox);
  assert.match(mbox, /^From dave@client\.example /m);
  assert.match(mbox, /^Received: from postfix\.posthorn\.test /m);
  assert.match(
    ph.logs(),
    /: from=<dave@client\.example>, size=\d+, class=0, nrcpts=1, .*proto=ESMTP, daemon=MTA/,
  );
  assert.match(
    postfix.logs(),
    /to=<alice@posthorn\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/,
  );
});

test('Postfix receives via SMART_HOST', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const { postfix, mailerPort } = await startRemotePostfix(t);
  const smartHost = [
    "define(`SMART_HOST', `[127.0.0.4]')",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${mailerPort}')`,
  ];
  // The MX points at a host with nothing listening, so only the smart host can deliver.
  const { ph } = await startPosthornWithDns(t, {
    mc: smartHost,
    mailerPort,
    mx: [[10, 'mx.remote.example', '127.0.0.3']],
  });

  const queueId = await sendToRemote(ph.port, 'smart host', 'Sent through the smart host.');

  const [message] = await postfix.waitForMessages(1, 30_000);
  assert.ok(message.includes('Sent through the smart host.'), message);
  assert.match(message, /^Return-Path: <alice@posthorn\.test>$/m);
  const line = await ph.waitForLog(
    new RegExp(`${quoteRe(queueId)}: to=<bob@remote\\.example>, .*stat=Sent.*`),
  );
  assert.match(line[0], /relay=.*\[127\.0\.0\.4\]/);
  assert.doesNotMatch(line[0], /127\.0\.0\.3/);
});
