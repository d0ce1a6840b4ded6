// `sendmail -t -i` submission, as cron and PHP use it: recipients come from the
// To, Cc and Bcc headers, Bcc is removed, and missing Date, Message-ID and From
// headers are added.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { mxZone } from '../helpers/e2e-setup';

/** Returns the header section of the last message in an mbox file. */
function headerSection(mbox: string): string {
  const start = mbox.lastIndexOf('\nFrom ') + 1;
  const message = mbox.slice(start);
  return message.slice(0, message.search(/\r?\n\r?\n/));
}

test('-t -i delivers to To, Cc and Bcc', async (t) => {
  const dns = await startDnsServer({ zones: mxZone('remote.example', []) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port }) });
  t.after(() => ph.stop());

  const input = [
    'To: alice@posthorn.test',
    'Cc: bob@posthorn.test',
    'Bcc: carol@posthorn.test',
    'Subject: nightly report',
    '',
    'All jobs finished.',
    '.',
    'A lone dot above stays in the body because of -i.',
    '',
  ].join('\n');
  const result = await ph.run(['-t', '-i'], input);
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);

  for (const user of ['alice', 'bob', 'carol']) {
    const mbox = await ph.waitForMailbox(user, 'A lone dot above stays in the body because of -i.');
    const headers = headerSection(mbox);
    assert.ok(mbox.includes('All jobs finished.'), `${user}: body missing`);
    assert.match(mbox, /^\.$/m, `${user}: the lone dot was lost`);
    assert.ok(mbox.includes('A lone dot above stays in the body'), `${user}: body cut at the dot`);
    assert.match(headers, /^Subject: nightly report\r?$/m, `${user}: Subject`);
    assert.match(headers, /^To: alice@posthorn\.test\r?$/m, `${user}: To`);
    assert.match(headers, /^Cc: bob@posthorn\.test\r?$/m, `${user}: Cc`);
    assert.doesNotMatch(headers, /^Bcc:/im, `${user}: Bcc must be removed`);
    assert.match(headers, /^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}/m, `${user}: Date`);
    assert.match(headers, /^Message-ID: <[^@>]+@[^>]+>\r?$/im, `${user}: Message-ID`);
    assert.match(headers, /^From: .*@/m, `${user}: From`);
  }
});

test('-t without recipients reports error', async (t) => {
  const dns = await startDnsServer({ zones: mxZone('remote.example', []) });
  t.after(() => dns.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port }) });
  t.after(() => ph.stop());

  const result = await ph.run(['-t', '-i'], 'Subject: nobody\n\nNo recipient header.\n');
  // NOTE: the exit code is not checked. Debian's sendmail 8.17.1.9 prints this
  // error and still exits 0 (tried with ErrorMode p, q and m).
  assert.match(result.stdout + result.stderr, /No recipient addresses found in header/);
  assert.deepEqual(ph.queueFiles().filter((f) => f.startsWith('qf')), []);
  for (const user of ['root', 'postmaster', 'MAILER-DAEMON']) {
    assert.equal(ph.mailbox(user), '', `nothing may be delivered to ${user}`);
  }
});

test('-t with Resent- headers uses only those', async (t) => {
  const ph = await startPosthorn({ mc: baseMc() });
  t.after(() => ph.stop());

  const input = [
    'From: alice@posthorn.test',
    'To: alice@posthorn.test',
    'Resent-From: alice@posthorn.test',
    'Resent-To: bob@posthorn.test',
    'Resent-Bcc: carol@posthorn.test',
    'Subject: passed on',
    '',
    'Resent to bob and carol.',
    '',
  ].join('\n');
  const result = await ph.run(['-t', '-i', '-odi'], input);
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);

  for (const user of ['bob', 'carol']) {
    const headers = headerSection(await ph.waitForMailbox(user, 'Resent to bob and carol.'));
    assert.match(headers, /^Resent-To: bob@posthorn\.test$/m, user);
    assert.doesNotMatch(headers, /^Resent-Bcc:/im, user);
    // As sendmail, the Resent- forms of Date: and Message-Id: are added.
    assert.match(headers, /^Resent-Date: /m, user);
    assert.match(headers, /^Resent-Message-Id: <\S+@mx\.posthorn\.test>$/m, user);
  }
  // To: names the original recipient, who is not sent the message again.
  assert.equal(ph.mailbox('alice'), '');
});
