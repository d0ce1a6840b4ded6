// FEATURE(local_lmtp) end to end: the daemon starts an LMTP program for local
// mail, one of three recipients fails after DATA, the other two get the
// message once, and a later queue run delivers only the third.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { receivedBy, writeLmtpServer } from '../local/lmtp-server';

// The test machine may be busy; load average limits would refuse the test's connections.
const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('local_lmtp delivers two of three', async (t) => {
  const lmtpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmtp-prog-'));
  t.after(() => fs.rmSync(lmtpDir, { recursive: true, force: true }));
  const program = writeLmtpServer(lmtpDir);
  fs.writeFileSync(path.join(lmtpDir, 'fail-users'), 'carol\n');

  const mc = baseMc({ extra: [...NO_LOAD_LIMITS, "FEATURE(`local_lmtp', `@LMTP@', `test-lmtp -l')"] });
  const ph = await startPosthorn({ mc, vars: { LMTP: program }, env: { LMTP_DIR: lmtpDir } });
  t.after(() => ph.stop());

  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['alice@posthorn.test', 'bob@posthorn.test', 'carol@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'team@posthorn.test', subject: 'lmtp three', body: 'One copy each.' }),
  });
  const qid = sent.queueId;
  assert.notEqual(qid, '', sent.replies.join('\n'));

  const q = quoteRe(qid);
  await ph.waitForLog(new RegExp(`${q}: to=<carol@posthorn\\.test>, .*mailer=local, .*dsn=4\\.2\\.2, stat=Deferred: 452 4\\.2\\.2 Mailbox full`), 30_000);
  assert.match(ph.logs(), new RegExp(`${q}: to=<alice@posthorn\\.test>, .*mailer=local, .*dsn=2\\.1\\.5, stat=Sent \\(<alice> delivered\\)`));
  assert.match(ph.logs(), new RegExp(`${q}: to=<bob@posthorn\\.test>, .*mailer=local, .*dsn=2\\.1\\.5, stat=Sent \\(<bob> delivered\\)`));
  assert.equal(receivedBy(lmtpDir, 'alice').length, 1);
  assert.equal(receivedBy(lmtpDir, 'bob').length, 1);
  assert.equal(receivedBy(lmtpDir, 'carol').length, 0);
  assert.match(receivedBy(lmtpDir, 'alice')[0], /^MAIL FROM <sender@remote\.example>/);
  assert.match(receivedBy(lmtpDir, 'alice')[0], /^Subject: lmtp three$/m);
  assert.ok(ph.queueFiles().includes(`qf${qid}`), ph.queueFiles().join(' '));
  const argv = fs.readFileSync(path.join(lmtpDir, 'argv.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(argv[0].slice(1), ['-l']);

  fs.rmSync(path.join(lmtpDir, 'fail-users'));
  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await ph.waitForLog(new RegExp(`${q}: to=<carol@posthorn\\.test>, .*stat=Sent`), 30_000);
  assert.equal(receivedBy(lmtpDir, 'carol').length, 1);
  assert.equal(receivedBy(lmtpDir, 'alice').length, 1, 'alice got the message twice');
  assert.equal(receivedBy(lmtpDir, 'bob').length, 1, 'bob got the message twice');
  await waitFor('the queue item to be removed', async () => ph.queueFiles().every((f) => !f.endsWith(qid)), 10_000);
});

test('local_lmtp permanent failure bounces', async (t) => {
  const lmtpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lmtp-prog-'));
  t.after(() => fs.rmSync(lmtpDir, { recursive: true, force: true }));
  const program = writeLmtpServer(lmtpDir);
  fs.writeFileSync(path.join(lmtpDir, 'fail-users'), 'carol\n');

  const mc = baseMc({ extra: [...NO_LOAD_LIMITS, "FEATURE(`local_lmtp', `@LMTP@', `test-lmtp -l')"] });
  const env = { LMTP_DIR: lmtpDir, LMTP_FAIL_REPLY: '550 5.1.1 <%u>... User unknown' };
  const ph = await startPosthorn({ mc, vars: { LMTP: program }, env });
  t.after(() => ph.stop());

  const sent = await sendRaw({
    port: ph.port,
    from: 'alice@posthorn.test',
    to: ['bob@posthorn.test', 'carol@posthorn.test'],
    data: makeMessage({ from: 'alice@posthorn.test', to: 'bob@posthorn.test', subject: 'lmtp bounce', body: 'Carol is gone.' }),
  });
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<carol@posthorn\\.test>, .*dsn=5\\.1\\.1, stat=User unknown`), 30_000);
  // The DSN goes back to alice, who is local, so it arrives through the same LMTP program.
  for (let i = 0; i < 100 && receivedBy(lmtpDir, 'alice').length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const dsn = receivedBy(lmtpDir, 'alice');
  assert.equal(dsn.length, 1);
  assert.match(dsn[0], /^MAIL FROM <>/);
  assert.match(dsn[0], /^Final-Recipient: RFC822; carol@posthorn\.test$/m);
  assert.match(dsn[0], /^Diagnostic-Code: SMTP; 550 5\.1\.1 <carol>\.\.\. User unknown$/m);
  assert.equal(receivedBy(lmtpDir, 'bob').length, 1);
});
