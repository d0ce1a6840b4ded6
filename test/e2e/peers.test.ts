// The test harness itself: the peers are installed and the helpers drive them.
// These pass without posthorn, so a failure here points at the setup.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSink } from '../helpers/sink';
import { startPostfix } from '../helpers/postfix';
import { requirePeer } from '../helpers/peers';
import { rawSmtp, smtplibSend, swaks } from '../helpers/clients';
import { freePortOn } from '../helpers/process';
import { makeMessage } from '../helpers/e2e-setup';

test('rawSmtp collects one reply per line', async (t) => {
  const sink = await startSink({ host: '127.0.0.6' });
  t.after(() => sink.close());
  const replies = await rawSmtp(
    sink.port,
    [
      'EHLO raw.posthorn.test',
      'MAIL FROM:<a@b.example>',
      'RCPT TO:<c@d.example>',
      'DATA',
      'Subject: x\r\n\r\n..dot\r\n.\r\n',
      'QUIT',
    ],
    { host: '127.0.0.6', localAddress: '127.0.0.7' },
  );
  assert.equal(replies.length, 7);
  assert.match(replies[1], /^250-sink\.test\n/);
  assert.match(replies[5], /^250 /);
  assert.equal(sink.messages[0].data.toString('latin1'), 'Subject: x\r\n\r\n.dot\r\n');
});

test('smtplib binds its source address', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const sink = await startSink({
    host: '127.0.0.6',
    rcptReply: (address) => (address.startsWith('no') ? '550 5.1.1 no' : '250 ok'),
  });
  t.after(() => sink.close());
  const result = await smtplibSend({
    python,
    host: '127.0.0.6',
    port: sink.port,
    sourceAddress: '127.0.0.8',
    from: 'a@b.example',
    to: ['yes@d.example', 'no@d.example'],
    data: makeMessage({ from: 'a@b.example', to: 'yes@d.example', subject: 's', body: 'b' }),
  });
  assert.equal(result.error, undefined);
  assert.deepEqual(result.rcpt.map((r) => r.code), [250, 550]);
  assert.equal(result.data?.code, 250);
  assert.deepEqual(sink.messages[0].to, ['yes@d.example']);
});

test('Postfix helper stores mail in a Maildir', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const bin = requirePeer(t, 'swaks');
  if (!bin) return;
  const port = await freePortOn(['127.0.0.6']);
  const postfix = await startPostfix({ port, addr: '127.0.0.6', mode: 'mailbox' });
  t.after(() => postfix.stop());

  const result = await swaks(
    [
      '--server', `127.0.0.6:${port}`,
      '--from', 'a@b.example',
      '--to', 'bob@postfix.test',
      '--body', 'maildir check',
    ],
    { bin },
  );
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const [message] = await postfix.waitForMessages(1, 20_000);
  assert.ok(message.includes('maildir check'));
  assert.match(message, /^Delivered-To: bob@postfix\.test$/m);
});

test('Postfix helper relays to a given host', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const sink = await startSink({ host: '127.0.0.7' });
  t.after(() => sink.close());
  const port = await freePortOn(['127.0.0.6']);
  const postfix = await startPostfix({
    port,
    addr: '127.0.0.6',
    mode: 'relay',
    relayTo: `127.0.0.7:${sink.port}`,
  });
  t.after(() => postfix.stop());

  const replies = await rawSmtp(
    port,
    [
      'EHLO raw.posthorn.test',
      'MAIL FROM:<a@b.example>',
      'RCPT TO:<c@elsewhere.example>',
      'DATA',
      'Subject: relay\r\n\r\nvia postfix\r\n.\r\n',
      'QUIT',
    ],
    { host: '127.0.0.6' },
  );
  assert.match(replies[5], /^250 2\.0\.0 Ok: queued as /);
  const [message] = await sink.waitForMessages(1, 20_000);
  assert.deepEqual(message.to, ['c@elsewhere.example']);
  assert.ok(message.data.toString('utf8').includes('via postfix'));
});
