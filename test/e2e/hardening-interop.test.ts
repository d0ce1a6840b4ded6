// Interoperability with Debian's sendmail on loopback, in both directions:
// sendmail delivering to posthorn as its smart host, and posthorn relaying to a
// sendmail daemon. Dot lines and 8-bit bytes must arrive unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { rawSmtp } from '../helpers/clients';
import { freePortOn, waitFor } from '../helpers/process';
import { mxZone } from '../helpers/e2e-setup';

const LOAD_OFF = ['-O', 'RefuseLA=0', '-O', 'QueueLA=0'];

test('sendmail delivers to posthorn as its smart host', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  if (!requirePeer(t, 'm4')) return;
  const ph = await startPosthorn({ mc: baseMc(), args: LOAD_OFF });
  t.after(() => ph.stop());
  const sm = await startSendmail({ bin, smartHost: { addr: ph.addr, port: ph.port } });
  t.after(() => sm.stop());

  const message = 'From: alice@sendmail.test\nTo: bob@posthorn.test\nSubject: from sendmail\n\nline one\n.dot line\n..two dots\nend of sendmail body\n';
  const sent = await sm.run(['-odi', '-oi', '-f', 'alice@sendmail.test', '-t'], message);
  assert.equal(sent.code, 0, sent.stdout + sent.stderr);

  const mbox = await ph.waitForMailbox('bob', 'end of sendmail body\n', 20_000);
  assert.match(mbox, /^Received: from mx\.sendmail\.test \(localhost \[127\.0\.0\.1\]\)/m);
  assert.ok(mbox.includes('\nline one\n.dot line\n..two dots\nend of sendmail body\n'), mbox);
  assert.match(ph.logs(), /from=<alice@sendmail\.test>, .*proto=ESMTP/);
});

test('posthorn relays to a sendmail daemon', async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (!bin) return;
  if (!requirePeer(t, 'm4')) return;
  const smPort = await freePortOn(['127.0.0.3']);
  const sm = await startSendmail({ bin, listen: { addr: '127.0.0.3', port: smPort } });
  t.after(() => sm.stop());
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.3']]) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort: smPort }), args: LOAD_OFF });
  t.after(() => ph.stop());

  const body = 'line one\r\n..dot line\r\n8-bit: \xe4\xf6\xfc\r\nend of posthorn body\r\n';
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example', 'MAIL FROM:<alice@posthorn.test> BODY=8BITMIME', 'RCPT TO:<carol@remote.example>', 'DATA',
    `From: alice@posthorn.test\r\nTo: carol@remote.example\r\nSubject: to sendmail\r\n\r\n${body}.\r\n`, 'QUIT',
  ]);
  const id = /^250 2\.0\.0 (\w{14}) /.exec(replies[5])?.[1];
  assert.ok(id, replies.join(' | '));
  await ph.waitForLog(new RegExp(`${id}: to=<carol@remote\\.example>, .*stat=Sent`), 20_000);

  const df = await waitFor('a data file in the sendmail queue', () => sm.queueFiles().find((f) => f.startsWith('df')), 10_000);
  const qf = fs.readFileSync(path.join(sm.queueDir, `qf${df.slice(2)}`), 'latin1');
  assert.match(qf, /^S<alice@posthorn\.test>$/m);
  assert.match(qf, /^R[A-Z]*:<?carol@remote\.example>?$/m);
  assert.match(qf, /^H\?\?Received: from mx\.posthorn\.test/m);
  // sendmail stores its data file with LF line ends and without dot-stuffing.
  // rawSmtp writes UTF-8, so the 8-bit line is compared as UTF-8 bytes.
  const expected = Buffer.from(body.replace(/\r\n/g, '\n').replace('..dot', '.dot'), 'utf8');
  assert.equal(fs.readFileSync(path.join(sm.queueDir, df)).toString('hex'), expected.toString('hex'));
});
