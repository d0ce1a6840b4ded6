// DSN end to end: NOTIFY, RET, ENVID and ORCPT passed to Postfix as the next
// hop and its success report coming back, "relayed" notices for a next hop
// without DSN, local delivery receipts, NEVER, and delay warnings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startPostfix } from '../helpers/postfix';
import { requirePeer } from '../helpers/peers';
import { freePortOn } from '../helpers/process';
import { rawSmtp } from '../helpers/clients';
import { makeMessage, mxZone, quoteRe } from '../helpers/e2e-setup';

/** A busy test machine must not make the daemon refuse connections or hold back queue runs. */
const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

/** Sends one message with DSN parameters; returns the queue id from the reply to the dot. */
async function sendWithDsn(port: number, mail: string, rcpts: string[], subject: string): Promise<string> {
  const data = makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body: `Body of ${subject}.` });
  const replies = await rawSmtp(port, ['EHLO client.posthorn.test', mail, ...rcpts, 'DATA', data + '.\r\n', 'QUIT']);
  const accepted = replies[4 + rcpts.length] ?? '';
  const match = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(accepted);
  assert.ok(match, `not accepted: ${JSON.stringify(replies)}`);
  return match[1];
}

test('DSN round trip through Postfix', async (t) => {
  if (!requirePeer(t, 'postfix')) return;
  const mailerPort = await freePortOn(['127.0.0.4']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.4']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }) });
  t.after(() => ph.stop());
  // Postfix keeps remote.example and sends everything else (its DSNs) back to posthorn.
  const postfix = await startPostfix({
    port: mailerPort,
    addr: '127.0.0.4',
    mode: 'mailbox',
    domains: ['remote.example'],
    extraMainCf: [`relayhost = [127.0.0.1]:${ph.port}`],
  });
  t.after(() => postfix.stop());

  const qid = await sendWithDsn(
    ph.port,
    'MAIL FROM:<alice@posthorn.test> RET=HDRS ENVID=QQ314159',
    ['RCPT TO:<bob@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Borig@remote.example'],
    'dsn round trip',
  );

  const [delivered] = await postfix.waitForMessages(1, 30_000);
  assert.ok(delivered.includes('Body of dsn round trip.'), delivered);
  // Postfix took the NOTIFY request over, so posthorn sends no receipt itself.
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent`));

  // Postfix's own success report reaches alice's mailbox through posthorn.
  const mbox = await ph.waitForMailbox('alice', 'Action: delivered', 60_000);
  assert.match(mbox, /^Original-Envelope-Id: QQ314159$/m);
  assert.match(mbox, /^Original-Recipient: rfc822;bob\+orig@remote\.example$/m);
  assert.match(mbox, /^Final-Recipient: rfc822; ?bob@remote\.example$/im);
  assert.match(mbox, /^Reporting-MTA: dns; ?postfix\.posthorn\.test$/m);
  assert.match(mbox, /text\/rfc822-headers/, 'RET=HDRS returns only the headers');
  assert.ok(!mbox.includes('Body of dsn round trip.'), 'RET=HDRS must not return the body');
  assert.ok(!new RegExp(`${quoteRe(qid)}: \\S+: DSN: Return receipt`).test(ph.logs()), 'no receipt from posthorn');
});

test('relayed notice when next hop lacks DSN', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }) });
  t.after(() => ph.stop());

  const qid = await sendWithDsn(
    ph.port,
    'MAIL FROM:<alice@posthorn.test> ENVID=env-7',
    ['RCPT TO:<bob@remote.example> NOTIFY=SUCCESS ORCPT=rfc822;bob@remote.example'],
    'relayed receipt',
  );
  const [message] = await sink.waitForMessages(1, 20_000);
  assert.ok(!sink.commands.some((c) => /NOTIFY=|ENVID=|ORCPT=|RET=/.test(c)), 'no DSN parameters to a non-DSN server');
  assert.ok(message.data.toString('utf8').includes('Body of relayed receipt.'));

  const mbox = await ph.waitForMailbox('alice', 'Content-Type: text/rfc822-headers', 30_000);
  assert.match(mbox, /^Subject: Return receipt$/m);
  assert.match(mbox, /^<bob@remote\.example> {2}\(relayed to non-DSN-aware mailer\)$/m);
  assert.match(mbox, /^Action: relayed$/m);
  assert.match(mbox, /^Original-Envelope-Id: env-7$/m);
  assert.match(mbox, /^Original-Recipient: rfc822;bob@remote\.example$/m);
  assert.match(mbox, /^Content-Type: text\/rfc822-headers$/m);
  assert.match(ph.logs(), new RegExp(`${quoteRe(qid)}: \\S+: DSN: Return receipt`));
});

test('DSN parameters passed to a DSN server', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const sink = await startSink({
    host: '127.0.0.2',
    port: mailerPort,
    extensions: ['PIPELINING', 'SIZE 10485760', '8BITMIME', 'ENHANCEDSTATUSCODES', 'DSN'],
  });
  t.after(() => sink.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort, extra: NO_LOAD_LIMITS }) });
  t.after(() => ph.stop());

  const qid = await sendWithDsn(
    ph.port,
    'MAIL FROM:<alice@posthorn.test> RET=FULL ENVID=a+2Bb',
    ['RCPT TO:<bob@remote.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob@remote.example'],
    'dsn params',
  );
  await sink.waitForMessages(1, 20_000);
  assert.ok(sink.commands.some((c) => /^MAIL FROM:<alice@posthorn\.test> .*RET=FULL/.test(c)), sink.commands.join('\n'));
  assert.ok(sink.commands.some((c) => /^MAIL FROM:.* ENVID=a\+2Bb/.test(c)), sink.commands.join('\n'));
  assert.ok(
    sink.commands.some((c) => c === 'RCPT TO:<bob@remote.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob@remote.example'),
    sink.commands.join('\n'),
  );
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Sent`));
  assert.ok(!/DSN: Return receipt/.test(ph.logs()), 'the DSN server takes the request over');
});

test('local receipt, NEVER and delay warning', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({
    mc: baseMc({ dnsPort: dns.port, mailerPort, extra: [...NO_LOAD_LIMITS, "define(`confTO_QUEUEWARN', `1s')"] }),
  });
  t.after(() => ph.stop());

  // Delivered to a local mailbox: receipt with Action: delivered.
  await sendWithDsn(ph.port, 'MAIL FROM:<alice@posthorn.test>', ['RCPT TO:<carol@posthorn.test> NOTIFY=SUCCESS'], 'local receipt');
  const receipt = await ph.waitForMailbox('alice', 'Action: delivered', 20_000);
  assert.match(receipt, /^<carol@posthorn\.test> {2}\(successfully delivered to mailbox\)$/m);
  assert.match(receipt, /^Status: 2\.0\.0$/m);

  // NOTIFY=NEVER: no warning (and no bounce) for this recipient, whatever happens.
  const neverId = await sendWithDsn(ph.port, 'MAIL FROM:<dave@posthorn.test>', ['RCPT TO:<nobody-here@remote.example> NOTIFY=NEVER'], 'never');
  // The next hop is down, so both are deferred.
  const warnId = await sendWithDsn(
    ph.port,
    'MAIL FROM:<erin@posthorn.test>',
    ['RCPT TO:<bob@remote.example> NOTIFY=DELAY,FAILURE'],
    'delayed',
  );
  await ph.waitForLog(new RegExp(`${quoteRe(warnId)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);
  await ph.waitForLog(new RegExp(`${quoteRe(neverId)}: to=<nobody-here@remote\\.example>, .*stat=Deferred`), 30_000);

  // Timeout.queuewarn is 1 s: the next attempt sends one warning.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const warning = await ph.waitForMailbox('erin', 'Action: delayed', 20_000);
  assert.match(warning, /^Subject: Warning: could not send message for past 1 second$/m);
  assert.match(warning, /THIS IS A WARNING MESSAGE ONLY/);
  assert.match(warning, /^Will-Retry-Until: /m);
  assert.match(fs.readFileSync(path.join(ph.queueDir, `qf${warnId}`), 'utf8'), /^F.*w/m, 'warning flag set');
  assert.equal(ph.mailbox('dave'), '', 'NOTIFY=NEVER gets no warning');

  const again = await ph.run(['-q']);
  assert.equal(again.code, 0, again.stderr);
  const warnings = ph.mailbox('erin').match(/^Action: delayed$/gm) ?? [];
  assert.equal(warnings.length, 1, 'only one warning per item');
  const verbose = await ph.run(['-bp', '-v']);
  assert.match(verbose.stdout, new RegExp(`^${quoteRe(warnId)} +\\d+ +\\d+\\+`, 'm'), 'mailq -v marks the warning with +');
});
