// Reproductions for "sendmail -t" with a "[" or an open "(" in To:, compared
// with Debian's sendmail 8.17.1.9 on the same input.
// Posthorn took any "[" for the start of a domain literal. An escape sequence
// pasted into one address ("c\x1b[31md@...") then swallowed every address
// after it, where sendmail queues the message for the valid one.
// A comment never closed after a valid address ("ok@..., (note <x@...")
// dropped x with exit 0 and no bounce, where sendmail reports "Unbalanced '('".
// Each Posthorn test fails while the problem is present.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findPeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { submitQueue } from '../helpers/submit-queue';

const ESCAPE = 'To: c\x1b[31md@example.com, ok1@example.com\nSubject: t\n\nbody\n';
const OPEN_COMMENT = 'To: ok7@example.com, (note <x@example.org\nSubject: t\n\nbody\n';

/** Runs "posthorn -odq -t -i" on a queue of its own and returns what it queued. */
function submit(input: string) {
  return submitQueue().run(['-odq', '-t', '-i'], input);
}

test('-t: "[" in a local part keeps the next address', { timeout: 60_000 }, async () => {
  const run = await submit(ESCAPE);
  // Before the fix: "c?[31md@example.com, ok1@example.com... Syntax error ...", and ok1 got nothing.
  assert.equal(run.code, 64, run.stderr);
  assert.match(run.stderr, /^posthorn: c\?\[31md@example\.com\.\.\. Syntax error in mailbox address .*\(non-printable character\)\n$/);
  assert.deepEqual(run.queued.find((q) => q.sender !== '<>')?.recipients, ['ok1@example.com']);
  assert.equal(run.queued.filter((q) => q.sender === '<>').length, 1, JSON.stringify(run.queued));
});

test('-t: a domain literal after "@" is still one token', { timeout: 60_000 }, async () => {
  const run = await submit('To: user@[127.0.0.1], ok2@example.com\nSubject: t\n\nbody\n');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.queued[0]?.recipients, ['ok2@example.com', 'user@[127.0.0.1]']);
});

test('-t: an open comment after a valid address is reported', { timeout: 60_000 }, async () => {
  const run = await submit(OPEN_COMMENT);
  // Before the fix: exit 0, nothing on standard error, and no bounce about "(note <x@example.org".
  assert.equal(run.code, 64, run.stderr);
  assert.equal(run.stderr, "posthorn: (note <x@example.org... Unbalanced '('\n");
  assert.deepEqual(run.queued.find((q) => q.sender !== '<>')?.recipients, ['ok7@example.com']);
  const dsn = run.queued.find((q) => q.sender === '<>');
  assert.match(dsn?.data ?? '', /^553 5\.0\.0 \(note <x@example\.org\.\.\. Unbalanced '\('\r$/m);
});

test('-t: a value that is one open comment has no recipient', { timeout: 60_000 }, async () => {
  // As sendmail 8.17: "No recipient addresses found in header", exit 0, nothing queued.
  const run = await submit('To: (note, ok9@example.com\nSubject: t\n\nbody\n');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, 'posthorn: No recipient addresses found in header\n');
  assert.equal(run.queued.length, 0);
});

test('-t: sendmail on the same input', { timeout: 120_000 }, async (t) => {
  const bin = findPeer('sendmail');
  if (bin === undefined) {
    t.skip('sendmail not installed');
    return;
  }
  const sm = await startSendmail({ bin });
  try {
    const escape = await sm.run(['-t', '-i', '-odq'], ESCAPE);
    assert.match(escape.stdout + escape.stderr, /"c\?\[31md@example\.com" \(non-printable character\)/);
    const qfs = sm.queueFiles().filter((n) => n.startsWith('qf')).map((n) => fs.readFileSync(path.join(sm.queueDir, n), 'latin1'));
    const original = qfs.find((qf) => /^Sroot$/m.test(qf)) ?? '';
    assert.deepEqual([...original.matchAll(/^rRFC822; (.*)$/gm)].map((m) => m[1]), ['ok1@example.com']);
    for (const name of sm.queueFiles()) fs.rmSync(path.join(sm.queueDir, name), { force: true });

    const comment = await sm.run(['-t', '-i', '-odq'], OPEN_COMMENT);
    assert.match(comment.stdout + comment.stderr, /^\(note <x@example\.org\.\.\. Unbalanced '\('$/m);
  } finally {
    await sm.stop();
  }
});
