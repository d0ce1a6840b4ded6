// Abuse of the SMTP command phase and of the daemon's signals. The cases: long
// EHLO names, thousands of RCPTs, odd MAIL and RCPT parameters, AUTH and
// STARTTLS when neither is offered, and half-closed sockets. SIGHUP comes with
// a message in flight and with a broken configuration.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp, StepClient } from '../helpers/clients';

let daemon: Posthorn;

before(async () => {
  daemon = await startPosthorn({ mc: baseMc() });
});

after(async () => {
  await daemon.stop();
});

/** Sends EHLO and then each command with RSET after it, and returns the replies to the commands. */
async function repliesAfterEhlo(commands: string[]): Promise<string[]> {
  const script = ['EHLO client.posthorn.test', ...commands.flatMap((c) => [c, 'RSET']), 'QUIT'];
  const replies = await rawSmtp(daemon.port, script);
  return commands.map((_, i) => replies[2 + 2 * i]);
}

test('EHLO of 100000 bytes', async () => {
  const replies = await rawSmtp(daemon.port, [`EHLO ${'a'.repeat(100_000)}`, `HELO ${'c'.repeat(2000)}`, 'QUIT']);
  assert.equal(replies[1], '500 5.5.0 Command line too long');
  assert.equal(replies[2], '501 5.0.0 Invalid domain name');
  assert.match(replies[3], /^221 /);
});

const mailParameters: Array<[string, string]> = [
  ['SIZE=-1', '552 5.2.3 Message size invalid'],
  ['SIZE=99999999999999999999', '552 5.2.3 Message size exceeds maximum value'],
  ['BODY=9BIT', '501 5.5.4 Unknown BODY type 9BIT'],
  ['BODY=8bitmime', '250 2.1.0 <a@b.test>... Sender ok'],
  ['RET=FULLX', '501 5.5.2 Bad argument "FULLX" to RET'],
  ['RET=hdrs', '250 2.1.0 <a@b.test>... Sender ok'],
  ['ENVID=a+2', '501 5.5.4 Syntax error in ENVID parameter value'],
  ['ENVID=a+ZZ', '501 5.5.4 Syntax error in ENVID parameter value'],
  ['ENVID=a+2b', '250 2.1.0 <a@b.test>... Sender ok'],
  ['RET=FULL RET=HDRS', '501 5.5.0 Duplicate RET parameter'],
  ['FOO=bar', '555 5.5.4 FOO parameter unrecognized'],
];

test('MAIL parameters with odd values', async () => {
  const replies = await repliesAfterEhlo(mailParameters.map(([p]) => `MAIL FROM:<a@b.test> ${p}`));
  mailParameters.forEach(([parameter, expected], i) => assert.equal(replies[i], expected, parameter));
});

test('RCPT parameters with odd values', async () => {
  const cases: Array<[string, RegExp]> = [
    ['NOTIFY=NEVER,SUCCESS', /^501 5\.5\.4 Bad argument "NEVER"/],
    ['NOTIFY=FOO', /^501 5\.5\.4 Bad argument "FOO"/],
    ['NOTIFY=success', /^250 2\.1\.5 /],
    ['ORCPT=rfc822;a+ZZ', /^501 5\.5\.4 Syntax error in ORCPT parameter value/],
    ['ORCPT=foo', /^501 5\.5\.4 Syntax error in ORCPT parameter value/],
  ];
  const script = ['EHLO client.posthorn.test', 'MAIL FROM:<a@b.test>'];
  script.push(...cases.map(([p]) => `RCPT TO:<alice@posthorn.test> ${p}`), 'QUIT');
  const replies = await rawSmtp(daemon.port, script);
  cases.forEach(([parameter, expected], i) => assert.match(replies[3 + i], expected, parameter));
});

test('AUTH and STARTTLS when not offered', async () => {
  const replies = await rawSmtp(daemon.port, ['EHLO client.posthorn.test', 'AUTH PLAIN AGFAYg==', 'STARTTLS', 'STARTTLS', 'QUIT']);
  assert.ok(!replies[1].includes('AUTH'), replies[1]);
  assert.ok(!replies[1].includes('STARTTLS'), replies[1]);
  assert.equal(replies[2], '503 5.3.3 AUTH not available');
  assert.equal(replies[3], '503 5.5.0 TLS not available');
  assert.equal(replies[4], '503 5.5.0 TLS not available');
});

test('5000 pipelined RCPTs', async () => {
  const client = await StepClient.connect(daemon.port);
  await client.reply();
  await client.command('EHLO client.posthorn.test');
  const count = 5000;
  const rcpts = Array.from({ length: count }, (_, i) => `RCPT TO:<u${i}@posthorn.test>\r\n`).join('');
  client.send(`MAIL FROM:<a@b.test>\r\n${rcpts}RSET\r\n`);
  assert.match(await client.reply(), /^250 2\.1\.0 /);
  for (let i = 0; i < count; i++) assert.match(await client.reply(), /^250 2\.1\.5 /, `RCPT ${i}`);
  assert.match(await client.reply(), /^250 2\.0\.0 /);
  assert.match(await client.command('QUIT'), /^221 /);
});

test('command pipelined behind EHLO', async () => {
  const client = await StepClient.connect(daemon.port);
  await client.reply();
  client.send('EHLO client.posthorn.test\r\nMAIL FROM:<a@b.test>\r\n');
  assert.match(await client.reply(), /^250-/);
  assert.equal(await client.reply(), '554 5.5.0 SMTP protocol error');
  client.socket.destroy();
  await daemon.waitForLog(/SMTP protocol error: commands pipelined behind EHLO/);
});

test('half-close in the middle of a body', async () => {
  const client = await StepClient.connect(daemon.port);
  await client.reply();
  await client.command('EHLO client.posthorn.test');
  await client.command('MAIL FROM:<a@b.test>');
  await client.command('RCPT TO:<halfclose@posthorn.test>');
  assert.match(await client.command('DATA'), /^354 /);
  client.send('Subject: half\r\n\r\npartial');
  client.socket.end();
  // sendmail's collect() replies to a half-closed client before it closes.
  assert.equal(await client.reply(), '451 4.4.1 collect: unexpected close on connection from localhost, from=<a@b.test>');
  assert.equal(await client.reply(), '');
  await daemon.waitForLog(/: collect: unexpected close on connection from localhost, sender=<a@b\.test>$/m);
  assert.equal(daemon.mailbox('halfclose'), '');
});

test('SIGHUP with a message in flight', async () => {
  const client = await StepClient.connect(daemon.port);
  await client.reply();
  await client.command('EHLO client.posthorn.test');
  await client.command('MAIL FROM:<a@b.test>');
  await client.command('RCPT TO:<hup@posthorn.test>');
  assert.match(await client.command('DATA'), /^354 /);
  client.send('Subject: hup\r\n\r\nbefore the signal\r\n');
  daemon.proc.kill('SIGHUP');
  await daemon.waitForLog(/restarting posthorn due to signal/);
  assert.match(await client.command('after the signal\r\n.'), /^250 2\.0\.0 \S+ Message accepted for delivery/);
  assert.match(await client.command('QUIT'), /^221 /);
  await daemon.waitForMailbox('hup', 'after the signal\n');
  const greeting = await rawSmtp(daemon.port, ['QUIT']);
  assert.match(greeting[0], /^220 /);
});

test('SIGHUP with a broken configuration', async () => {
  const good = fs.readFileSync(daemon.mcPath, 'utf8');
  try {
    fs.appendFileSync(daemon.mcPath, "define(`confMAX_MESSAGE_SIZE', `-1')\n");
    daemon.proc.kill('SIGHUP');
    await daemon.waitForLog(/configuration not reloaded: .*sendmail\.mc:\d+: invalid value "-1" for option MaxMessageSize/);
    assert.equal(daemon.proc.exitCode, null);
    const replies = await rawSmtp(daemon.port, ['QUIT']);
    assert.match(replies[0], /^220 /);
  } finally {
    fs.writeFileSync(daemon.mcPath, good);
  }
});

test('half-closed socket before greeting', async () => {
  const socket = net.connect({ host: '127.0.0.1', port: daemon.port });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  // Reading is needed for the socket to see the server's end and close.
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.end();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  assert.match(received, /^220 /);
  const replies = await rawSmtp(daemon.port, ['QUIT']);
  assert.match(replies[0], /^220 /);
});
