// DELIVERBY (RFC 2852) end to end: the EHLO keyword and MAIL BY= replies next
// to real sendmail 8.17 (`sendmail -bs` from .peers/), the bounce of an R
// request and the delay warning of an N request whose time runs out in the
// queue, and the BY= with the time left to a next hop that offers DELIVERBY.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { freePortOn } from '../helpers/process';
import { rawSmtp } from '../helpers/clients';
import { makeMessage, mxZone, quoteRe } from '../helpers/e2e-setup';
import { stdioSmtp } from '../server/stdio-smtp';

const BY_VALUES = [
  'BY=60;R', 'BY=60;N', 'BY=60;RT', 'BY=-5;N', 'BY=0;R', 'BY=-5;R', 'BY=abc;R', 'BY=60',
  'BY=60;X', 'BY=60;R BY=30;N', 'BY=5;R', 'BY=5;N', 'BY=60;NR', 'BY=60;', 'BY', 'BY=',
  'BY=+7;R', 'BY=9999999999;R', 'BY=60;RTX',
];

/** EHLO, then for each BY value a MAIL with it and a RSET. */
const COMPARED = ['EHLO client.example', ...BY_VALUES.flatMap((by) => [`MAIL FROM:<> ${by}`, 'RSET']), 'QUIT'];

/** Replies without host names and the keywords that differ for other reasons (EXPN, VERB, AUTH). */
function normalize(replies: string[]): string[] {
  return replies.map((r) =>
    r
      .replace(/^220 .*/, '220 <greeting>')
      .replace(/^250-\S+ Hello .*, pleased to meet you/, '250-<host> Hello <client>, pleased to meet you')
      .replace(/\n250-(AUTH|EXPN|VERB)\b[^\n]*/g, '')
      .replace(/mx\.(posthorn|sendmail)\.test/g, '<host>'),
  );
}

async function compareWithSendmail(t: { after(fn: () => Promise<void>): void }, bin: string, min: string): Promise<void> {
  const sendmail = await startSendmail({ bin });
  t.after(() => sendmail.stop());
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly', '-O', `DeliverByMin=${min}`] });
  t.after(() => ph.stop());

  const ours = normalize(await rawSmtp(ph.port, COMPARED));
  const args = ['--uts', 'sh', '-c', 'hostname mx.sendmail.test && exec "$0" "$@"', bin,
    '-C', `${sendmail.dir}/sendmail.cf`, '-bs', `-ODeliverByMin=${min}`];
  const theirs = normalize(await stdioSmtp('unshare', args, COMPARED));
  assert.deepEqual(ours, theirs, `DeliverByMin=${min}`);
}

test('BY replies match sendmail, min 0', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  await compareWithSendmail(t, bin, '0');
});

test('BY replies match sendmail, min 10', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  await compareWithSendmail(t, bin, '10');
});

// NOTE: the option parser reads DeliverByMin as a duration and rejects "-1";
// the server side is ready (see test/smtp/deliver-by.test.ts).
test('BY replies match sendmail, negative min', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  await compareWithSendmail(t, bin, '-1');
});

/** Sends one message to bob@remote.example; returns its queue id. */
async function send(ph: Posthorn, mail: string, rcpt: string, subject: string): Promise<string> {
  const data = makeMessage({ from: 'alice@posthorn.test', to: 'bob@remote.example', subject, body: `Body of ${subject}.` });
  const replies = await rawSmtp(ph.port, ['EHLO client.posthorn.test', mail, rcpt, 'DATA', data + '.\r\n', 'QUIT']);
  const match = /^250 2\.0\.0 (\S+) Message accepted for delivery$/.exec(replies[5] ?? '');
  assert.ok(match, `not accepted: ${JSON.stringify(replies)}`);
  return match[1];
}

/** Starts a posthorn whose next hop for remote.example (127.0.0.2) is down. */
async function startWithHopDown(t: { after(fn: () => Promise<void>): void }): Promise<Posthorn> {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());
  return ph;
}

test('expired R request bounces', async (t) => {
  const ph = await startWithHopDown(t);
  const qid = await send(ph, 'MAIL FROM:<alice@posthorn.test> BY=2;R', 'RCPT TO:<bob@remote.example>', 'by return');
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);
  // Deferred, the item is written out of the commit journal before that line is logged.
  const qf = fs.readFileSync(path.join(ph.queueDir, `qf${qid}`), 'latin1');
  assert.match(qf, /^!\x02 2$/m);

  // Let the two seconds run out, then the queue run returns the message untried.
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const bounce = await ph.waitForMailbox('alice', 'Action: failed', 20_000);
  assert.match(bounce, /^Status: 5\.4\.7$/m);
  assert.match(bounce, /^Delivery time \(2s\) expired$/m);
  assert.match(bounce, /^<bob@remote\.example>\.\.\. delivery time expired 2s$/m);
  assert.ok(!fs.existsSync(path.join(ph.queueDir, `qf${qid}`)), 'the item left the queue');
});

test('expired N request warns once', async (t) => {
  const ph = await startWithHopDown(t);
  const qid = await send(ph, 'MAIL FROM:<erin@posthorn.test> BY=1;N', 'RCPT TO:<bob@remote.example>', 'by notify');
  await ph.waitForLog(new RegExp(`${quoteRe(qid)}: to=<bob@remote\\.example>, .*stat=Deferred`), 30_000);

  await new Promise((resolve) => setTimeout(resolve, 1100));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const warning = await ph.waitForMailbox('erin', 'Action: delayed', 20_000);
  assert.match(warning, /^Subject: Warning: Delivery time \(1s\) exceeded$/m);
  assert.match(warning, /THIS IS A WARNING MESSAGE ONLY/);
  assert.ok(!/Action: failed/.test(warning), 'a warning, not a bounce');
  assert.ok(fs.existsSync(path.join(ph.queueDir, `qf${qid}`)), 'the item stays queued');

  const again = await ph.run(['-q']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((ph.mailbox('erin').match(/^Action: delayed$/gm) ?? []).length, 1, 'only one warning');
});

test('BY= relayed with time left', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort, extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES', 'DELIVERBY'] });
  t.after(() => sink.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());

  await send(ph, 'MAIL FROM:<alice@posthorn.test> BY=3600;RT', 'RCPT TO:<bob@remote.example>', 'by relay');
  await sink.waitForMessages(1, 30_000);
  const mail = sink.commands.find((c) => c.startsWith('MAIL FROM:')) ?? '';
  const by = /^MAIL FROM:<alice@posthorn\.test> BY=(\d+);RT$/.exec(mail);
  assert.ok(by, mail);
  assert.ok(Number(by[1]) <= 3600, `time left ${by[1]}`);
  assert.ok(Number(by[1]) > 0, `time left ${by[1]}`);
});

test('R request to hop without DELIVERBY bounces', async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const sink = await startSink({ host: '127.0.0.2', port: mailerPort });
  t.after(() => sink.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }) });
  t.after(() => ph.stop());

  await send(ph, 'MAIL FROM:<alice@posthorn.test> BY=3600;R', 'RCPT TO:<bob@remote.example>', 'by refused');
  const bounce = await ph.waitForMailbox('alice', 'Action: failed', 30_000);
  assert.match(bounce, /^Status: 5\.4\.7$/m);
  assert.match(bounce, /Server does not support Deliver By/);
  assert.ok(!sink.commands.some((c) => c.startsWith('MAIL FROM:<alice')), 'no MAIL to that hop');
});
