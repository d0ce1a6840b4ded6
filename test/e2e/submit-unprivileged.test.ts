// A user who may not write the queue folder (a web server, a cron job of a
// user) runs `sendmail -t -i`. The message goes to the daemon over SMTP, as
// through sendmail's mail submission program. The command fails with
// EX_TEMPFAIL when the daemon cannot take it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { runAsNobody as submitAsNobody, startDaemonForOthers } from '../helpers/unprivileged';

const MESSAGE = 'To: alice@posthorn.test\nBcc: bob@posthorn.test\nSubject: from a web page\n\nOrder 42 is ready.\n';

/** Names of the temporary submission folders left in the temporary folder. */
function submitFolders(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('posthorn-submit-'));
}

test('unprivileged -t goes through the daemon', { timeout: 60_000 }, async (t) => {
  // The configuration is readable for everyone, the queue (0700) and the log only for root.
  const ph = await startDaemonForOthers(t);
  if (ph === undefined) return;
  assert.equal(fs.statSync(ph.queueDir).mode & 0o777, 0o700);
  const before = submitFolders();

  const run = await submitAsNobody(ph, ['-t', '-i'], MESSAGE);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  const mailbox = await ph.waitForMailbox('alice', 'Order 42 is ready');
  // The submission's own Received: line, then the daemon's for the SMTP hop.
  assert.match(mailbox, /^Received: \(from nobody@localhost\)$/m);
  assert.match(mailbox, /^Received: from mx\.posthorn\.test \(localhost \[127\.0\.0\.1\]\)$/m);
  assert.match(mailbox, /^Return-Path: <nobody@mx\.posthorn\.test>$/m);
  assert.doesNotMatch(mailbox, /^Bcc:/m);
  await ph.waitForMailbox('bob', 'Order 42 is ready');
  assert.deepEqual(submitFolders(), before);

  // -Q needs a trusted user, as with sendmail; through the daemon it would be lost.
  const quarantined = await submitAsNobody(ph, ['-Qspam', '-t', '-i'], MESSAGE);
  assert.equal(quarantined.code, 64);
  assert.match(quarantined.stderr, /^posthorn: Permission denied \(real uid not trusted\)$/m);
  // TrustedUser is matched against the real uid's account, not $USER or $LOGNAME, which the caller sets.
  const pretending = await submitAsNobody(ph, ['-O', 'TrustedUser=alice', '-Qspam', '-t', '-i'], MESSAGE, { ...process.env, USER: 'alice', LOGNAME: 'alice' });
  assert.equal(pretending.code, 64);
  assert.match(pretending.stderr, /^posthorn: Permission denied \(real uid not trusted\)$/m);

  await ph.kill('SIGTERM');
  const down = await submitAsNobody(ph, ['-t', '-i'], MESSAGE);
  assert.equal(down.code, 75);
  assert.match(down.stderr, /^posthorn: cannot submit the message to the mail daemon at \[127\.0\.0\.1\] port \d+: .*; the message was not sent$/m);
  assert.deepEqual(submitFolders(), before);
});
