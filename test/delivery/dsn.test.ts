import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildDsn, DsnInput, rfc5322Date } from '../../src/delivery/dsn';
import { makeItem, recipient } from './fixtures';

const NOW = new Date(Date.UTC(2006, 5, 20, 12, 14, 5));

function input(extra: Partial<DsnInput> = {}): DsnInput {
  const item = makeItem('k5KCE4Kb012345', [recipient('bob@dest.test')], {
    created: Math.floor(Date.UTC(2006, 5, 20, 12, 14, 4) / 1000),
    envid: 'env-1',
  });
  return {
    kind: 'failure',
    item,
    recipients: [
      {
        address: 'bob@dest.test',
        orcpt: 'rfc822;bob@dest.test',
        action: 'failed',
        status: '5.1.1',
        reason: 'User unknown',
        remoteMta: 'mx.dest.test',
        diagnostic: '550 5.1.1 <bob@dest.test>... User unknown',
        lastAttempt: NOW,
      },
    ],
    to: 'alice@origin.test',
    hostName: 'posthorn.test',
    messageId: 'k5KCE5Ab000001@posthorn.test',
    now: NOW,
    transcript: ['>>> RCPT TO:<bob@dest.test>', '<<< 550 5.1.1 <bob@dest.test>... User unknown'],
    ...extra,
  };
}

/** Splits a whole multipart body into its parts, each as headers and content. */
function parts(body: string, boundary: string): { headers: string; content: string }[] {
  const sections = body.split(`\r\n--${boundary}`);
  assert.ok(sections[sections.length - 1].startsWith('--\r\n'), 'closing delimiter present');
  return sections.slice(1, -1).map((s) => {
    assert.ok(s.startsWith('\r\n'), 'delimiter ends its line');
    const rest = s.slice(2);
    const blank = rest.indexOf('\r\n\r\n');
    if (rest.startsWith('\r\n')) return { headers: '', content: rest.slice(2) };
    return { headers: rest.slice(0, blank), content: rest.slice(blank + 4) };
  });
}

function fields(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

test('failure DSN headers', () => {
  const dsn = buildDsn(input());
  assert.deepEqual(dsn.headers, [
    'From: Mail Delivery Subsystem <MAILER-DAEMON@posthorn.test>',
    'To: <alice@origin.test>',
    'Subject: Returned mail: see transcript for details',
    'Date: Tue, 20 Jun 2006 12:14:05 +0000',
    'Message-Id: <k5KCE5Ab000001@posthorn.test>',
    'Auto-Submitted: auto-generated (failure)',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="k5KCE4Kb012345.1150805645/posthorn.test"',
  ]);
  assert.equal(dsn.boundary, 'k5KCE4Kb012345.1150805645/posthorn.test');
});

test('failure DSN parts and fields', () => {
  const dsn = buildDsn(input());
  const body = dsn.head + 'Original body\r\n' + dsn.tail;
  const [text, status, original] = parts('\r\n' + body, dsn.boundary);

  assert.match(text.content, /^The original message was received at Tue, 20 Jun 2006 12:14:04 \+0000\r\nfrom client\.origin\.test \[127\.0\.0\.1\]\r\n/);
  assert.ok(text.content.includes('   ----- The following addresses had permanent fatal errors -----\r\n<bob@dest.test>\r\n    (reason: 550 5.1.1 <bob@dest.test>... User unknown)\r\n'));
  assert.ok(text.content.includes('   ----- Transcript of session follows -----\r\n>>> RCPT TO:<bob@dest.test>\r\n'));

  assert.equal(status.headers, 'Content-Type: message/delivery-status');
  const [perMessage, perRecipient] = status.content.split('\r\n\r\n');
  const m = fields(perMessage);
  assert.equal(m.get('Reporting-MTA'), 'dns; posthorn.test');
  assert.equal(m.get('Received-From-MTA'), 'DNS; client.origin.test');
  assert.equal(m.get('Original-Envelope-Id'), 'env-1');
  assert.equal(m.get('Arrival-Date'), 'Tue, 20 Jun 2006 12:14:04 +0000');
  const r = fields(perRecipient);
  assert.equal(r.get('Original-Recipient'), 'rfc822;bob@dest.test');
  assert.equal(r.get('Final-Recipient'), 'RFC822; bob@dest.test');
  assert.equal(r.get('Action'), 'failed');
  assert.equal(r.get('Status'), '5.1.1');
  assert.equal(r.get('Remote-MTA'), 'DNS; mx.dest.test');
  assert.equal(r.get('Diagnostic-Code'), 'SMTP; 550 5.1.1 <bob@dest.test>... User unknown');
  assert.equal(r.get('Last-Attempt-Date'), 'Tue, 20 Jun 2006 12:14:05 +0000');

  assert.equal(original.headers, 'Content-Type: message/rfc822');
  assert.equal(
    original.content,
    'From: alice@origin.test\r\nTo: bob@dest.test\r\nSubject: greetings\r\n\r\nOriginal body\r\n',
  );
  assert.equal(dsn.includeBody, true);
});

test('RET=HDRS returns only the headers', () => {
  const base = input();
  base.item.ret = 'HDRS';
  const dsn = buildDsn(base);
  assert.equal(dsn.includeBody, false);
  const [, , original] = parts('\r\n' + dsn.head + dsn.tail, dsn.boundary);
  assert.equal(original.headers, 'Content-Type: text/rfc822-headers');
  assert.equal(original.content, 'From: alice@origin.test\r\nTo: bob@dest.test\r\nSubject: greetings\r\n');
});

test('postmaster copy subject', () => {
  const dsn = buildDsn(input({ postmasterCopy: true, to: 'postmaster' }));
  assert.ok(dsn.headers.includes('Subject: Postmaster notify: see transcript for details'));
  assert.ok(dsn.headers.includes('To: <postmaster>'));
});

test('delay notice', () => {
  const base = input({
    kind: 'delay',
    delayedFor: '4 hours',
    giveUpAfter: '5 days',
    willRetryUntil: new Date(Date.UTC(2006, 5, 25, 12, 14, 4)),
  });
  base.recipients[0] = { ...base.recipients[0], action: 'delayed', status: '4.4.1', reason: 'Connection refused by mx.dest.test.', diagnostic: undefined };
  const dsn = buildDsn(base);
  assert.ok(dsn.headers.includes('Subject: Warning: could not send message for past 4 hours'));
  const [text, status] = parts('\r\n' + dsn.head + 'x\r\n' + dsn.tail, dsn.boundary);
  assert.ok(text.content.includes('**      THIS IS A WARNING MESSAGE ONLY      **'));
  assert.ok(text.content.includes('   ----- The following addresses had transient non-fatal errors -----'));
  assert.ok(text.content.includes('<bob@dest.test>... Deferred: Connection refused by mx.dest.test.\r\n'));
  assert.ok(text.content.includes('Warning: message still undelivered after 4 hours\r\nWill keep trying until message is 5 days old\r\n'));
  const r = fields(status.content.split('\r\n\r\n')[1]);
  assert.equal(r.get('Action'), 'delayed');
  assert.equal(r.get('Will-Retry-Until'), 'Sun, 25 Jun 2006 12:14:04 +0000');
});

test('rfc5322Date', () => {
  assert.equal(rfc5322Date(new Date(Date.UTC(2024, 0, 5, 3, 4, 5))), 'Fri, 5 Jan 2024 03:04:05 +0000');
});
