// Real SMTP clients against posthorn: Python's smtplib, nodemailer and swaks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodemailerSend, smtplibSend, swaks } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { makeMessage, startPosthornWithDns } from '../helpers/e2e-setup';

test('smtplib sends to several recipients', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const { ph } = await startPosthornWithDns(t);

  const result = await smtplibSend({
    python,
    port: ph.port,
    from: 'dave@client.example',
    to: ['alice@posthorn.test', 'bob@posthorn.test'],
    data: makeMessage({
      from: 'dave@client.example',
      to: 'alice@posthorn.test, bob@posthorn.test',
      subject: 'smtplib',
      body: 'Sent by smtplib.',
    }),
  });
  assert.equal(result.error, undefined);
  assert.equal(result.greeting?.code, 220);
  assert.equal(result.ehlo?.code, 250);
  assert.equal(result.mail?.code, 250);
  assert.deepEqual(result.rcpt.map((r) => r.code), [250, 250]);
  assert.equal(result.data?.code, 250);
  assert.match(result.data?.text ?? '', /^2\.0\.0 \S+ Message accepted for delivery$/);
  assert.equal(result.quit?.code, 221);

  for (const user of ['alice', 'bob']) {
    const mbox = await ph.waitForMailbox(user, 'Sent by smtplib.');
    assert.ok(mbox.includes('Sent by smtplib.'), `${user}: body missing`);
  }
});

test('smtplib from 127.0.0.9 gets relay denial', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const { ph } = await startPosthornWithDns(t);

  const result = await smtplibSend({
    python,
    port: ph.port,
    sourceAddress: '127.0.0.9',
    from: 'dave@client.example',
    to: ['alice@posthorn.test', 'x@remote.example'],
    data: makeMessage({
      from: 'dave@client.example',
      to: 'alice@posthorn.test',
      subject: 'partly denied',
      body: 'Only the local recipient gets this.',
    }),
  });
  assert.equal(result.error, undefined);
  assert.deepEqual(result.rcpt.map((r) => r.code), [250, 550]);
  assert.match(result.rcpt[1].text, /^5\.7\.1 <x@remote\.example>\.\.\. Relaying denied/);
  assert.equal(result.data?.code, 250);

  const mbox = await ph.waitForMailbox('alice', 'Only the local recipient gets this.');
  assert.ok(mbox.includes('Only the local recipient gets this.'));
  assert.match(mbox, /\[127\.0\.0\.9\]/);
});

test('nodemailer sends with Cc', async (t) => {
  const { ph } = await startPosthornWithDns(t);

  const info = await nodemailerSend({
    port: ph.port,
    from: 'dave@client.example',
    to: ['alice@posthorn.test'],
    cc: ['bob@posthorn.test'],
    subject: 'nodemailer',
    text: 'Sent by nodemailer.',
  });
  assert.deepEqual(info.accepted.sort(), ['alice@posthorn.test', 'bob@posthorn.test']);
  assert.deepEqual(info.rejected, []);
  assert.match(info.response, /^250 2\.0\.0 \S+ Message accepted for delivery$/);

  for (const user of ['alice', 'bob']) {
    const mbox = await ph.waitForMailbox(user, 'Sent by nodemailer.');
    assert.ok(mbox.includes('Sent by nodemailer.'), `${user}: body missing`);
    assert.ok(mbox.includes(info.messageId), `${user}: Message-ID changed`);
  }
});

test('swaks sends one message', async (t) => {
  const bin = requirePeer(t, 'swaks');
  if (!bin) return;
  const { ph } = await startPosthornWithDns(t);

  const result = await swaks(
    [
      '--server', `127.0.0.1:${ph.port}`,
      '--ehlo', 'swaks.posthorn.test',
      '--from', 'dave@client.example',
      '--to', 'alice@posthorn.test',
      '--header', 'Subject: swaks',
      '--body', 'Sent by swaks.',
    ],
    { bin },
  );
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /<- {2}250 2\.0\.0 \S+ Message accepted for delivery/);
  assert.match(result.stdout, /<- {2}221 /);

  const mbox = await ph.waitForMailbox('alice', 'Sent by swaks.');
  assert.ok(mbox.includes('Sent by swaks.'));
  assert.match(mbox, /^Received: from swaks\.posthorn\.test /m);
});
