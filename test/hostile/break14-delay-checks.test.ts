// FEATURE(`delay_checks', `friend'), as in Debian's default sendmail.mc,
// against sendmail 8.17 on the same map (its replies are the expected ones).
// sendmail accepts MAIL from a rejected sender with 250 and rejects each RCPT
// after the recipient's own checks, so that a Spam:FRIEND recipient (such as
// postmaster) still gets the mail. Posthorn rejected the sender at MAIL,
// ignored Spam: entries, applied a delayed Connect: rejection before the
// recipient's checks, and left the recipient out of the reply.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { makemap } from '../e2e/policy-support';

const ACCESS = [
  'Spam:friend@posthorn.test\tFRIEND',
  'Spam:friends.example\tFRIEND',
  'Connect:127.0.0.3\tREJECT',
  'Connect:127.0.0.5\tERROR:451 4.3.2 later',
  'From:bad.example\tREJECT',
  'From:slow.example\tERROR:451 4.7.1 try later',
  'To:closed@posthorn.test\tREJECT',
  '',
].join('\n');

const RCPTS = [
  'RCPT TO:<friend@posthorn.test>',
  'RCPT TO:<x@posthorn.test>',
  'RCPT TO:<closed@posthorn.test>',
  'RCPT TO:<z@elsewhere.example>',
];

let ph: Posthorn;

before(async () => {
  ph = await startPosthorn({
    mc: baseMc({
      extra: [
        "FEATURE(`access_db', `hash -o @DIR@/access')",
        "FEATURE(`blacklist_recipients')",
        "FEATURE(`delay_checks', `friend', `n')",
      ],
    }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  const built = makemap(path.join(ph.dir, 'access'), ACCESS);
  assert.equal(built.status, 0, built.stderr);
});

after(() => ph?.stop());

function session(from: string, sender: string): Promise<string[]> {
  return rawSmtp(ph.port, ['HELO client.example', `MAIL FROM:<${sender}>`, ...RCPTS, 'QUIT'], { localAddress: from });
}

test('rejected sender is rejected at RCPT', async () => {
  const replies = await session('127.0.0.9', 'a@bad.example');
  assert.equal(replies[2], '250 2.1.0 <a@bad.example>... Sender ok');
  assert.equal(replies[3], '250 2.1.5 <friend@posthorn.test>... Recipient ok');
  assert.equal(replies[4], '550 5.7.1 <x@posthorn.test>... Access denied');
  assert.equal(replies[5], '550 5.2.1 <closed@posthorn.test>... Mailbox disabled for this recipient');
  assert.equal(replies[6], '550 5.7.1 <z@elsewhere.example>... Relaying denied. IP name lookup failed [127.0.0.9]');
});

test('delayed 4xx sender reply', async () => {
  const replies = await session('127.0.0.9', 'a@slow.example');
  assert.equal(replies[3], '250 2.1.5 <friend@posthorn.test>... Recipient ok');
  assert.equal(replies[4], '451 4.7.1 try later');
});

test('delayed Connect: REJECT after recipient checks', async () => {
  const replies = await session('127.0.0.3', 'a@good.example');
  assert.equal(replies[2], '250 2.1.0 <a@good.example>... Sender ok');
  assert.equal(replies[3], '250 2.1.5 <friend@posthorn.test>... Recipient ok');
  assert.equal(replies[4], '550 5.7.1 <x@posthorn.test>... Access denied');
  assert.equal(replies[5], '550 5.2.1 <closed@posthorn.test>... Mailbox disabled for this recipient');
  assert.equal(replies[6], '550 5.7.1 <z@elsewhere.example>... Relaying denied. IP name lookup failed [127.0.0.3]');
});

test('delayed Connect: 451', async () => {
  const replies = await session('127.0.0.5', 'a@good.example');
  assert.equal(replies[4], '451 4.3.2 later');
});

test('next MAIL forgets the rejected sender', async () => {
  const replies = await rawSmtp(ph.port, [
    'HELO client.example', 'MAIL FROM:<a@bad.example>', 'RSET', 'MAIL FROM:<a@good.example>', 'RCPT TO:<x@posthorn.test>', 'QUIT',
  ], { localAddress: '127.0.0.9' });
  assert.equal(replies[5], '250 2.1.5 <x@posthorn.test>... Recipient ok');
});
