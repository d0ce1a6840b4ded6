// Large messages end to end: bodies of several MiB go through the DataReader's
// indexOf fast path, the batched df writes and the block-wise send with
// dot-stuffing, and must arrive at the next hop byte for byte. The size limit
// and the 421 on a bare LF far into a large body must leave nothing queued.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SinkMessage } from '../helpers/sink';
import type { Posthorn } from '../helpers/posthorn';
import { makeMessage, quoteRe, startPostfixHop, startSinkHop } from '../helpers/e2e-setup';
import { rawSmtp, smtplibSend } from '../helpers/clients';
import { requirePeer } from '../helpers/peers';
import { makeTestCerts } from '../tls/certs';

/**
 * Builds a body of about `size` bytes with CRLF line ends: plain lines, lines
 * that start with one or two dots, a line that is a single dot, empty and
 * blank lines, long lines, and (with `eightBit`) non-ASCII text.
 */
function bigBody(size: number, eightBit = false): string {
  const kinds = [
    (n: number) => `plain line ${n} of the large message`,
    (n: number) => `.leading dot ${n}`,
    () => '..two dots',
    () => '.',
    () => '',
    () => ' ',
    (n: number) => `${'long'.repeat(200)} ${n}`,
    (n: number) => (eightBit ? `caf\u00e9 \u00fcber stra\u00dfe ${n}` : `seven bit ${n}`),
    () => '...',
  ];
  const lines: string[] = [];
  let length = 0;
  for (let n = 0; length < size; n++) {
    // A varying pattern, so that dots land at many offsets of the 64 KiB reads.
    const line = kinds[(n * 7 + (n >> 3)) % kinds.length](n);
    lines.push(line);
    length += line.length + 2;
  }
  return lines.join('\r\n') + '\r\n';
}

/** Returns the part of a relayed message after the header section. */
function bodyOf(message: SinkMessage): Buffer {
  const data = message.data;
  return data.subarray(data.indexOf('\r\n\r\n') + 4);
}

/** Waits up to 10 s for the queue to empty; returns the df, qf and tf files left. */
async function queueLeft(ph: Posthorn): Promise<string[]> {
  const left = (): string[] => ph.queueFiles().filter((f) => /^[dqt]f/.test(f));
  for (let i = 0; i < 200 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  return left();
}

async function waitSent(ph: Posthorn, id: string): Promise<void> {
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=Sent`), 30_000);
}

test('3 MiB smtplib message relayed exactly', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const { ph, sink } = await startSinkHop(t);
  const body = bigBody(3 * 1024 * 1024);
  const result = await smtplibSend({
    python,
    port: ph.port,
    from: 'alice@client.example',
    to: ['bob@remote.example'],
    data: makeMessage({ from: 'alice@client.example', to: 'bob@remote.example', subject: 'large', body: '' }).replace(/\r\n$/, '') + body,
  });
  assert.equal(result.error, undefined);
  assert.equal(result.data?.code, 250, result.data?.text);
  const id = /^2\.0\.0 (\S+) Message accepted/.exec(result.data?.text ?? '')?.[1] ?? '';
  await waitSent(ph, id);

  const [message] = await sink.waitForMessages(1, 30_000);
  assert.match(message.data.toString('latin1'), /\r\nSubject: large\r\n/);
  const got = bodyOf(message);
  assert.equal(got.length, Buffer.byteLength(body));
  assert.ok(got.equals(Buffer.from(body, 'latin1')), 'the relayed body differs from the one sent');
  const mail = sink.commands.find((c) => c.startsWith('MAIL FROM:'));
  assert.match(mail ?? '', /^MAIL FROM:<alice@client\.example> SIZE=\d+$/);
  assert.deepEqual(await queueLeft(ph), [], 'the delivered item is removed');
});

test('8-bit 2.5 MiB message with BODY=8BITMIME', async (t) => {
  const { ph, sink } = await startSinkHop(t);
  const body = bigBody(2.5 * 1024 * 1024, true);
  const header = makeMessage({ from: 'alice@client.example', to: 'bob@remote.example', subject: '8bit', body: '' }).replace(/\r\n$/, '');
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<alice@client.example> BODY=8BITMIME',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    // rawSmtp writes strings as UTF-8: the body goes out with 8-bit bytes.
    (header + body).replace(/^\./gm, '..') + '.\r\n',
    'QUIT',
  ], { timeoutMs: 60_000 });
  const accepted = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(replies[5] ?? '');
  assert.ok(accepted, replies.join('\n'));
  await waitSent(ph, accepted[1]);

  const [message] = await sink.waitForMessages(1, 30_000);
  const expected = Buffer.from(body, 'utf8');
  assert.ok(bodyOf(message).equals(expected), 'the relayed body differs from the one sent');
  const mail = sink.commands.find((c) => c.startsWith('MAIL FROM:')) ?? '';
  assert.match(mail, / BODY=8BITMIME/);
  const size = Number(/SIZE=(\d+)/.exec(mail)?.[1]);
  assert.ok(size >= expected.length, `SIZE=${size} is below the body length ${expected.length}`);
});

test('MaxMessageSize exceeded by 2 MiB body', async (t) => {
  const { ph } = await startSinkHop(t, { args: ['-O', 'MaxMessageSize=1000000'] });
  const body = bigBody(2 * 1024 * 1024);
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<alice@client.example>',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    `Subject: too big\r\n\r\n${body}`.replace(/^\./gm, '..') + '.\r\n',
    'MAIL FROM:<alice@client.example>',
    'QUIT',
  ], { timeoutMs: 60_000 });
  assert.equal(replies[5], '552 5.2.3 Message exceeds maximum fixed size (1000000)');
  assert.match(replies[6] ?? '', /^250 2\.1\.0 /);
  assert.deepEqual(await queueLeft(ph), []);
});

test('bare LF after 1.5 MiB of body', async (t) => {
  const { ph } = await startSinkHop(t);
  const body = bigBody(1.5 * 1024 * 1024) + 'smuggled\n.\nMAIL FROM:<evil@x>\r\n' + bigBody(256 * 1024);
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<alice@client.example>',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    `Subject: bare\r\n\r\n${body}`.replace(/^\./gm, '..') + '.\r\n',
    'QUIT',
  ], { timeoutMs: 60_000 });
  assert.equal(replies[5], '421 4.5.0 Bare linefeed (LF) not allowed');
  assert.equal(replies.length, 6, 'the session ends after the 421');
  await ph.waitForLog(/collect: Bare linefeed \(LF\) not allowed: from=<alice@client\.example>/, 10_000);
  assert.deepEqual(await queueLeft(ph), []);
});

test('3 MiB message over STARTTLS to Postfix', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const certs = await makeTestCerts();
  t.after(() => certs.remove());
  const { ph, postfix } = await startPostfixHop(t, { certs });

  const body = bigBody(3 * 1024 * 1024);
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<alice@client.example>',
    'RCPT TO:<bob@remote.example>',
    'DATA',
    `Subject: large over tls\r\n\r\n${body}`.replace(/^\./gm, '..') + '.\r\n',
    'QUIT',
  ], { timeoutMs: 60_000 });
  const accepted = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(replies[5] ?? '');
  assert.ok(accepted, replies.join('\n'));
  await waitSent(ph, accepted[1]);
  await ph.waitForLog(/STARTTLS=client, relay=mx\.remote\.example\., version=TLSv1\.3/);

  const [message] = await postfix.waitForMessages(1, 30_000);
  assert.match(message, /\(using TLSv1\.3 with cipher \S+/);
  // Postfix stores the message with LF line ends.
  const stored = message.slice(message.indexOf('\n\n') + 2);
  assert.equal(stored.length, body.replace(/\r\n/g, '\n').length);
  assert.ok(stored === body.replace(/\r\n/g, '\n'), 'the body stored by Postfix differs from the one sent');
});
