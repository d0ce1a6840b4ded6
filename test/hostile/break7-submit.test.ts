// Reproductions for problems found by breaking the command line, the alias
// expansion and the control file writer. Each test states the expected
// behaviour (sendmail 8.13's, or the documented one), so each fails while the
// problem is present.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { runCommand } from '../helpers/process';

/** Returns the text of the only control file in the queue folder. */
function onlyControlFile(ph: Posthorn): string {
  const names = ph.queueFiles().filter((name) => name.startsWith('qf'));
  assert.equal(names.length, 1, `queue files: ${ph.queueFiles().join(' ')}`);
  return fs.readFileSync(path.join(ph.queueDir, names[0]), 'latin1');
}

test('-F with a newline adds no header', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const fullName = 'Evil\nBcc: victim@elsewhere.test\nX-Injected: 1';
  const result = await ph.run(['-odi', '-F', fullName, 'alice@posthorn.test'], 'Subject: hi\n\nHello.\n');
  assert.equal(result.code, 0, result.stderr);

  const mbox = await ph.waitForMailbox('alice', 'Hello.');
  assert.doesNotMatch(mbox, /^Bcc: victim@elsewhere\.test/m);
  assert.doesNotMatch(mbox, /^X-Injected: 1/m);
});

test('invalid -f leaves no data file', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const result = await ph.run(['-odq', '-f', 'a b@@c', 'alice@posthorn.test'], 'Subject: hi\n\nHello.\n');
  // EX_USAGE, as sendmail 8.17 exits after an address error.
  assert.equal(result.code, 64);
  assert.deepEqual(ph.queueFiles(), []);
});

test('-N -R -V -B reach the control file', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const args = ['-odq', '-N', 'never', '-R', 'hdrs', '-V', 'envid42', '-B', '8BITMIME', 'alice@posthorn.test'];
  const result = await ph.run(args, 'Subject: hi\n\nHello.\n');
  assert.equal(result.code, 0, result.stderr);

  // The same values given over SMTP (NOTIFY=NEVER, RET=HDRS, ENVID, BODY) give these lines.
  const qf = onlyControlFile(ph);
  assert.match(qf, /^Zenvid42$/m);
  assert.match(qf, /^B8BITMIME$/m);
  assert.match(qf, /^F[a-z]*n/m);
  assert.match(qf, /^RPN:<alice@posthorn\.test>$/m);
});

test('unknown -o letter is a usage error', { timeout: 30_000 }, async () => {
  const mcDir = fs.mkdtempSync(path.join('/tmp', 'posthorn-break7-'));
  const mcPath = path.join(mcDir, 'sendmail.mc');
  fs.writeFileSync(mcPath, "define(`QUEUE_DIR', `" + path.join(mcDir, 'mqueue') + "')\nMAILER(`local')\n");
  try {
    const result = await runCommand(process.execPath, [posthornBin, '-C', mcPath, '-o!x', '-bP'], { timeoutMs: 20_000 });
    assert.doesNotMatch(result.stderr, /internal error/);
    assert.notEqual(result.code, 70);
  } finally {
    fs.rmSync(mcDir, { recursive: true, force: true });
  }
});

test('empty QueueDirectory is a configuration error', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const submit = await ph.run(['-odq', '-O', 'QueueDirectory=', '-t'], 'To: alice@posthorn.test\n\nHello.\n');
  assert.doesNotMatch(submit.stderr, /internal error/);
  assert.equal(submit.code, 78);

  const file = path.join(ph.dir, 'sendmail.mc');
  const asFile = await ph.run(['-odq', '-O', `QueueDirectory=${file}`, '-t'], 'To: alice@posthorn.test\n\nHello.\n');
  assert.doesNotMatch(asFile.stderr, /internal error/);
});

test('long macro names written as ${name}', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, [
    'EHLO client.posthorn.test',
    'MAIL FROM:<a@posthorn.test>',
    'RCPT TO:<alice@posthorn.test>',
    'DATA',
    'Subject: hi\r\n\r\nHello.\r\n.\r\n',
    'QUIT',
  ]);
  assert.match(replies[5] ?? '', /^250 /);

  // A long macro name is written inside one pair of braces, as sendmail writes
  // ${daemon_flags} and as docs/queue-format.md shows for ${client_addr}.
  const qf = onlyControlFile(ph);
  assert.match(qf, /^\$\{daemon_name\}MTA$/m);
  assert.doesNotMatch(qf, /^\$\{\{/m);
});

test('missing :include: bounces with its reason', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`ALIAS_FILE', `@DIR@/aliases')"] }),
    args: ['-O', 'DeliveryMode=deferred'],
  });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), `list: :include:${ph.dir}/no-such-list\n`);

  const submit = await ph.run(['-odq', '-f', 'owner@posthorn.test', 'list@posthorn.test'], 'Subject: hi\n\nHello.\n');
  assert.equal(submit.code, 0, submit.stderr);
  await ph.run(['-qf']);

  const line = await ph.waitForLog(/to=<list@posthorn\.test>.*stat=.*/);
  assert.doesNotMatch(line[0], /loop broken/);
  assert.match(line[0], /Cannot open/);
});

test('transient :include: error defers', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`ALIAS_FILE', `@DIR@/aliases')"] }),
    args: ['-O', 'DeliveryMode=deferred'],
  });
  t.after(() => ph.stop());
  // Reading /proc/self/mem fails with EIO, which the expander itself calls a 451 (tempfail).
  fs.writeFileSync(path.join(ph.dir, 'aliases'), 'list: :include:/proc/self/mem\n');

  const submit = await ph.run(['-odq', '-f', 'owner@posthorn.test', 'list@posthorn.test'], 'Subject: hi\n\nHello.\n');
  assert.equal(submit.code, 0, submit.stderr);
  await ph.run(['-qf']);

  const line = await ph.waitForLog(/to=<list@posthorn\.test>.*stat=.*/);
  assert.match(line[0], /stat=Deferred/);
  assert.equal(ph.mailbox('owner'), '', 'no bounce for a temporary failure');
});

test('alias file that is a FIFO blocks nothing', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: ["define(`ALIAS_FILE', `@DIR@/aliases')"] }),
  });
  t.after(async () => {
    // A daemon blocked in a read of the FIFO does not handle SIGTERM.
    ph.proc.kill('SIGKILL');
    await ph.stop();
  });
  fs.rmSync(path.join(ph.dir, 'aliases'), { force: true });
  await runCommand('mkfifo', [path.join(ph.dir, 'aliases')]);

  const first = await rawSmtp(
    ph.port,
    ['EHLO client.posthorn.test', 'MAIL FROM:<a@posthorn.test>', 'RCPT TO:<alice@posthorn.test>', 'DATA', 'Subject: hi\r\n\r\nHello.\r\n.\r\n', 'QUIT'],
    { timeoutMs: 10_000 },
  ).catch((err: Error) => err.message.split('\n'));
  assert.match(first.join('\n'), /^250 2\.0\.0 \S+ Message accepted/m);

  const second = await rawSmtp(ph.port, ['QUIT'], { timeoutMs: 5_000 }).catch((err: Error) => [err.message]);
  assert.match(second[0] ?? '', /^220 /);
});
