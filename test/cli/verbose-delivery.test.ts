// sendmail -v: the message is delivered before the command returns, and the
// dialogue with each next hop and every recipient's status are printed on
// standard output, as sendmail 8.17 prints them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { startSink } from '../helpers/sink';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';

const MESSAGE = 'Subject: verbose\n\nWatch it go.\n';

/**
 * Returns the lines of the dialogue that do not depend on the MTA: the
 * client's commands (sendmail writes "MAIL From:", so case is ignored, and the
 * sender and SIZE differ) and the sink's replies.
 */
function commonLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => /^(>>> (MAIL|RCPT|DATA|\.)|250 2\.0\.0 Message accepted|354 )/i.test(line))
    .map((line) => line.toUpperCase().replace(/ SIZE=\d+.*/, '').replace(/^>>> MAIL FROM:<.*>/, '>>> MAIL FROM:<SENDER>'));
}

test('-v relays in the foreground and prints the dialogue', { timeout: 60_000 }, async (t) => {
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  const run = await ph.run(['-v', 'bob@remote.example'], MESSAGE);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^bob@remote\.example\.\.\. Connecting to \[127\.0\.0\.1\] via relay\.\.\.$/);
  assert.ok(lines.some((l) => /^>>> EHLO /.test(l)), run.stdout);
  assert.match(lines.at(-1) ?? '', /^bob@remote\.example\.\.\. Sent \(/);
  assert.equal(sink.messages.length, 1, 'delivered before the command returned');

  const sendmailBin = requirePeer(t, 'sendmail');
  if (sendmailBin === undefined) return;
  const sendmail = await startSendmail({ bin: sendmailBin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-v', 'bob@remote.example'], MESSAGE);
  assert.equal(theirs.code, 0, theirs.stderr);
  assert.deepEqual(commonLines(run.stdout), commonLines(theirs.stdout));
  assert.match(theirs.stdout.split('\n')[0], /^bob@remote\.example\.\.\. Connecting to \[127\.0\.0\.1\] .*via relay\.\.\.$/);
});

test('-v delivers a local recipient', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  const run = await ph.run(['-v', 'alice'], MESSAGE);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trimEnd().split('\n'), ['alice... Connecting to local...', 'alice... Sent']);
  assert.match(await ph.mailbox('alice'), /Watch it go\./);
});

test('-q -v prints each delivery of the run', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  assert.equal((await ph.run(['-odq', 'alice'], MESSAGE)).code, 0);
  const run = await ph.run(['-q', '-v']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trimEnd().split('\n'), ['alice... Connecting to local...', 'alice... Sent']);
});
