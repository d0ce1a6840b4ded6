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
  assert.equal(lines[0], `bob@remote.example... Connecting to [127.0.0.1] port ${sink.port} via relay...`);
  assert.ok(lines.some((l) => /^>>> EHLO /.test(l)), run.stdout);
  // A reply of several lines shows each as it came, "250-" before the last.
  assert.ok(lines.includes('250-PIPELINING'), run.stdout);
  // The session ends with QUIT before the command returns.
  assert.deepEqual(lines.slice(-3), ['Closing connection to [127.0.0.1]', '>>> QUIT', '221 2.0.0 sink.test closing connection']);
  assert.match(lines.at(-4) ?? '', /^bob@remote\.example\.\.\. Sent \(/);
  assert.equal(sink.messages.length, 1, 'delivered before the command returned');

  const sendmailBin = requirePeer(t, 'sendmail');
  if (sendmailBin === undefined) return;
  const sendmail = await startSendmail({ bin: sendmailBin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-v', 'bob@remote.example'], MESSAGE);
  assert.equal(theirs.code, 0, theirs.stderr);
  assert.deepEqual(commonLines(run.stdout), commonLines(theirs.stdout));
  const theirLines = theirs.stdout.trimEnd().split('\n');
  assert.equal(theirLines[0], lines[0]);
  assert.ok(theirLines.includes('250-PIPELINING'), theirs.stdout);
  assert.deepEqual(theirLines.slice(-3), lines.slice(-3));
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
  const id = ph.queueFiles().find((f) => f.startsWith('qf'))?.slice(2);
  const run = await ph.run(['-q', '-v']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.trimEnd().split('\n'), ['', `Running ${ph.queueDir}/${id} (sequence 1 of 1)`, 'alice... Connecting to local...', 'alice... Sent']);
});

test('-q -v delivers items in turn', { timeout: 60_000 }, async (t) => {
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());

  assert.equal((await ph.run(['-odq', 'bob@remote.example'], MESSAGE)).code, 0);
  assert.equal((await ph.run(['-odq', 'carol@remote.example'], MESSAGE)).code, 0);
  const run = await ph.run(['-q', '-v']);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.split('\n');
  const running = lines.filter((l) => l.startsWith('Running '));
  assert.equal(running.length, 2, run.stdout);
  assert.match(running[0], new RegExp(`^Running ${ph.queueDir}/\\w+ \\(sequence 1 of 2\\)$`));
  assert.match(running[1], /\(sequence 2 of 2\)$/);
  // Each "Running" line has an empty line before it.
  assert.equal(lines[lines.indexOf(running[1]) - 1], '');
  // The second item goes over the session the first one left open.
  assert.equal(lines.filter((l) => / Connecting to \[127\.0\.0\.1\] port /.test(l)).length, 1, run.stdout);
  assert.equal(lines.filter((l) => / Using cached ESMTP connection to \[127\.0\.0\.1\] via relay\.\.\.$/.test(l)).length, 1, run.stdout);
  assert.equal(lines.filter((l) => l === '>>> QUIT').length, 1, run.stdout);
  assert.equal(sink.messages.length, 2);
});
