// Reproductions for the command-line submission with some invalid recipient
// addresses, compared with Debian's sendmail 8.17.1.9 on the same input.
// sendmail queues the message for the valid recipients, exits 64 and sends
// the sender a bounce about the invalid ones. Posthorn took "bad<<address@,
// bob@example.com" as one address, so bob was lost, and then queued nothing
// at all. Each Posthorn test fails while the problem is present.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPeer, requirePeer } from '../helpers/peers';
import type { CommandResult } from '../helpers/process';
import { startSendmail } from '../helpers/sendmail';
import { submitQueue, type QueuedItem } from '../helpers/submit-queue';
import { NOBODY, runAsNobody, startDaemonForOthers } from '../helpers/unprivileged';

const MIXED = 'To: alice@example.com, bad<<address@, bob@example.com\nSubject: t\n\nbody\n';

type Queued = QueuedItem;

const BOUNCE_SUBJECT = 'Returned mail: see transcript for details';

function message(queued: Queued[]): Queued | undefined {
  return queued.find((q) => q.sender !== '<>');
}

function bounce(queued: Queued[]): Queued | undefined {
  return queued.find((q) => q.sender === '<>');
}

test('-t: valid recipients still queued', { timeout: 120_000 }, async (t) => {
  const s = submitQueue();
  const run = await s.run(['-odq', '-t', '-i'], MIXED);
  // Before the fix: "posthorn: <address@,bob@example.com... Unbalanced '<'", exit 64, nothing queued.
  assert.equal(run.code, 64, run.stderr);
  assert.equal(run.stderr, "posthorn: bad<<address@... Unbalanced '<'\n");
  assert.equal(run.queued.length, 2, JSON.stringify(run.queued));
  assert.deepEqual(message(run.queued)?.recipients, ['alice@example.com', 'bob@example.com']);
  const dsn = bounce(run.queued);
  assert.deepEqual(dsn?.recipients, ['root@mx.posthorn.test']);
  assert.equal(dsn?.subject, BOUNCE_SUBJECT);
  assert.match(dsn?.data ?? '', /^Final-Recipient: RFC822; bad<<address@\r$/m);
  assert.match(dsn?.data ?? '', /^553 5\.0\.0 bad<<address@\.\.\. Unbalanced '<'\r$/m);
  // The bounce returns the message.
  assert.match(dsn?.data ?? '', /^To: alice@example\.com, bad<<address@, bob@example\.com\r$/m);

  // The same input to sendmail, when it is installed.
  const bin = findPeer('sendmail');
  if (bin === undefined) {
    t.diagnostic('sendmail not installed: Posthorn checked alone');
    return;
  }
  const sm = await startSendmail({ bin });
  try {
    const peer = await sm.run(['-t', '-i', '-odq'], MIXED);
    assert.equal(peer.code, 64, peer.stdout + peer.stderr);
    assert.match(peer.stdout, /^bad<<address@\.\.\. /m);
    const qfs = sm.queueFiles().filter((n) => n.startsWith('qf')).map((n) => fs.readFileSync(path.join(sm.queueDir, n), 'latin1'));
    assert.equal(qfs.length, 2);
    const original = qfs.find((qf) => /^Sroot$/m.test(qf)) ?? '';
    assert.deepEqual([...original.matchAll(/^rRFC822; (.*)$/gm)].map((m) => m[1]).sort(), ['alice@example.com', 'bob@example.com']);
    const peerDsn = qfs.find((qf) => /^SMAILER-DAEMON$/m.test(qf)) ?? '';
    assert.match(peerDsn, new RegExp(`^H\\?\\?Subject: ${BOUNCE_SUBJECT}$`, 'm'));
  } finally {
    await sm.stop();
  }
});

test('-t: only bad recipients bounced', { timeout: 60_000 }, async () => {
  const s = submitQueue();
  const run = await s.run(['-odq', '-t', '-i'], 'To: carol@, bad<<address@\nSubject: t\n\nbody\n');
  // Before the fix: exit 64 and nothing queued, so the sender never learnt of it.
  assert.equal(run.code, 64, run.stderr);
  assert.equal(run.stderr, "posthorn: carol@... Hostname required\nposthorn: bad<<address@... Unbalanced '<'\n");
  assert.equal(run.queued.length, 1, JSON.stringify(run.queued));
  assert.equal(bounce(run.queued)?.subject, BOUNCE_SUBJECT);
  assert.match(bounce(run.queued)?.data ?? '', /^Final-Recipient: RFC822; carol@\r$/m);
});

test('command line: bad recipient bounced', { timeout: 60_000 }, async () => {
  // sendmail 8.17 queues it for alice, exits 64 and saves a copy to
  // ~/dead.letter; Posthorn bounces to the sender instead (see bounceRejected()).
  const s = submitQueue();
  const run = await s.run(['-odq', '-i', 'alice@example.com', 'bad<<address@'], 'Subject: t\n\nbody\n');
  // Before the fix: exit 64 and nothing queued.
  assert.equal(run.code, 64, run.stderr);
  assert.equal(run.stderr, "posthorn: bad<<address@... Unbalanced '<'\n");
  assert.deepEqual(message(run.queued)?.recipients, ['alice@example.com']);
  assert.equal(bounce(run.queued)?.subject, BOUNCE_SUBJECT);

  const alone = await s.run(['-odq', '-i', 'x@@example.org'], 'Subject: t\n\nbody\n');
  assert.equal(alone.code, 64, alone.stderr);
  assert.equal(alone.stderr, 'posthorn: x@@example.org... Invalid route address\n');
  assert.equal(alone.queued.length, 1, JSON.stringify(alone.queued));
  assert.equal(bounce(alone.queued)?.subject, BOUNCE_SUBJECT);

  // -N never: the sender requested no failure report.
  const quiet = await s.run(['-odq', '-i', '-N', 'never', 'alice@example.com', 'x@@example.org'], 'Subject: t\n\nbody\n');
  assert.equal(quiet.code, 64, quiet.stderr);
  assert.equal(quiet.queued.length, 1, JSON.stringify(quiet.queued));
  assert.deepEqual(message(quiet.queued)?.recipients, ['alice@example.com']);
});

test('unprivileged -t: valid recipients delivered', { timeout: 60_000 }, async (t) => {
  // A user who may not write the queue submits through the daemon over SMTP.
  const ph = await startDaemonForOthers(t);
  if (ph === undefined) return;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break18-tmp-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.chownSync(tmp, NOBODY, NOBODY);

  const submit = (input: string): Promise<CommandResult> => runAsNobody(ph, ['-t', '-i'], input, { ...process.env, TMPDIR: tmp });
  const run = await submit('To: alice@posthorn.test, bad<<address@, bob@posthorn.test\nSubject: t\n\nOrder 18 is ready.\n');
  // Before the fix: exit 64 and nothing sent to the daemon.
  assert.equal(run.code, 64, run.stderr);
  assert.equal(run.stderr, "posthorn: bad<<address@... Unbalanced '<'\n");
  await ph.waitForMailbox('alice', 'Order 18 is ready.\n\n');
  await ph.waitForMailbox('bob', 'Order 18 is ready.\n\n');
  // The sender (nobody, a local account) gets the bounce through the daemon.
  const dsn = await ph.waitForMailbox('nobody', '--\n\n');
  assert.match(dsn, /^Final-Recipient: RFC822; bad<<address@$/m);

  // Without a valid recipient only the bounce goes to the daemon.
  const alone = await submit('To: carol@\nSubject: t\n\nOrder 19 is ready.\n');
  assert.equal(alone.code, 64, alone.stderr);
  assert.equal(alone.stderr, 'posthorn: carol@... Hostname required\n');
  await ph.waitForMailbox('nobody', 'Order 19 is ready.\n\n--');
  assert.match(ph.mailbox('nobody'), /^Final-Recipient: RFC822; carol@$/m);
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test('-t: exit status as sendmail', { timeout: 120_000 }, async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  // sendmail exits 0 when a header address's only fault is an unbalanced bracket
  // or quote, and 64 when its rulesets reject one (Hostname required, Invalid route address).
  const cases = [
    'alice@example.com, bad<<address',
    'alice@example.com, "unterminated',
    'alice@example.com, bad<<address@',
    'alice@example.com, bob@',
    'alice@example.com, <bob@',
    'alice@example.com, bob@@x',
  ];
  const s = submitQueue();
  const sm = await startSendmail({ bin });
  try {
    for (const to of cases) {
      const input = `To: ${to}\nSubject: t\n\nbody\n`;
      const ours = await s.run(['-odq', '-t', '-i'], input);
      const theirs = await sm.run(['-t', '-i', '-odq'], input);
      assert.equal(ours.code, theirs.code, `To: ${to}: posthorn ${ours.code} (${ours.stderr.trim()}), sendmail ${theirs.code} (${theirs.stdout.split('\n')[0]})`);
      assert.deepEqual(message(ours.queued)?.recipients, ['alice@example.com'], `To: ${to}`);
    }
  } finally {
    await sm.stop();
  }
});
