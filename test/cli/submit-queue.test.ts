// Command-line submissions against a running daemon's queue directory: what an
// interrupted or rejected submission leaves behind, -N never for a recipient
// that fails, and QueueDirectory paths that are no directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn } from '../helpers/posthorn';
import { startDnsServer } from '../helpers/dns-server';
import { startSink } from '../helpers/sink';
import { freePortOn, waitFor } from '../helpers/process';
import { mxZone, quoteRe } from '../helpers/e2e-setup';

const MESSAGE = 'Subject: hi\n\nHello.\n';

test('signal while reading leaves no files', { timeout: 90_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const child = spawn(process.execPath, [posthornBin, '-C', ph.mcPath, '-odq', '-t'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('exit', (code, sig) => resolve([code, sig]));
    });

    // Standard input stays open, so the submission is still reading when the signal comes.
    child.stdin.write('To: alice@posthorn.test\nSubject: cut off\n\nfirst line\n');
    await waitFor(`a data file before ${signal}`, () => ph.queueFiles().some((name) => name.startsWith('df')), 20_000);
    child.kill(signal);
    const [code, endedBy] = await exited;
    child.stdin.destroy();

    assert.equal(endedBy, signal, `${signal}: exit code ${code}, stderr ${stderr}`);
    assert.deepEqual(ph.queueFiles(), [], `${signal} left queue files`);
  }
});

test('invalid flags leave no queue files', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const cases: Array<[string[], number, RegExp]> = [
    [['-f', 'a b@@c'], 64, /^posthorn: a b@@c\.\.\. /],
    [['-N', 'sometimes'], 64, /^posthorn: Invalid -N argument$/m],
    [['-R', 'body'], 64, /^posthorn: Invalid -R value$/m],
    [['-V', 'id=1'], 64, /^posthorn: Invalid syntax in -V flag$/m],
    [['-B', '9BIT'], 64, /^posthorn: Illegal body type 9BIT$/m],
  ];
  for (const [flags, code, message] of cases) {
    const result = await ph.run(['-odq', ...flags, 'alice@posthorn.test'], MESSAGE);
    assert.equal(result.code, code, `${flags.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, flags.join(' '));
    assert.deepEqual(ph.queueFiles(), [], `${flags.join(' ')} left queue files`);
  }
});

test('-t takes -V and -R', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  const result = await ph.run(['-odq', '-V', 'env+2B7', '-R', 'full', '-N', 'success,failure', '-t'], 'To: bob@posthorn.test\n\nHello.\n');
  assert.equal(result.code, 0, result.stderr);

  const names = ph.queueFiles().filter((name) => name.startsWith('qf'));
  assert.equal(names.length, 1, ph.queueFiles().join(' '));
  const qf = fs.readFileSync(path.join(ph.queueDir, names[0]), 'latin1');
  assert.match(qf, /^Zenv\+2B7$/m);
  assert.match(qf, /^Fd$/m);
  assert.match(qf, /^RPNSF:<bob@posthorn\.test>$/m);
  assert.doesNotMatch(qf, /^B/m, 'no -B, no B line');
});

test('-N never failure sends no bounce', { timeout: 90_000 }, async (t) => {
  const mailerPort = await freePortOn(['127.0.0.2']);
  const dns = await startDnsServer({ zones: mxZone('remote.example', [[10, 'mx.remote.example', '127.0.0.2']]) });
  t.after(() => dns.close());
  const sink = await startSink({
    host: '127.0.0.2',
    port: mailerPort,
    rcptReply: () => '550 5.1.1 No such user here',
  });
  t.after(() => sink.close());
  const ph = await startPosthorn({ mc: baseMc({ dnsPort: dns.port, mailerPort }), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  // The same failure with -N failure bounces, so the check below can fail.
  // -odi reports the rejection in its exit status, 67 (EX_NOUSER), as sendmail 8.17 does.
  const control = await ph.run(['-odi', '-N', 'failure', '-f', 'erin@posthorn.test', 'bob@remote.example'], MESSAGE);
  assert.equal(control.code, 67, control.stderr);
  await ph.run(['-q']);
  await ph.waitForMailbox('erin', 'Hello.', 30_000);

  const never = await ph.run(['-odi', '-N', 'never', '-f', 'dave@posthorn.test', 'bob@remote.example'], MESSAGE);
  assert.equal(never.code, 67, never.stderr);
  const [, id] = await ph.waitForLog(/(\S+): from=<dave@posthorn\.test>/);
  await ph.waitForLog(new RegExp(`${quoteRe(id)}: to=<bob@remote\\.example>, .*stat=`));
  await ph.run(['-q']);

  assert.equal(ph.mailbox('dave'), '', 'no bounce for -N never');
  assert.ok(!ph.queueFiles().some((name) => name.startsWith('qf')), `queue: ${ph.queueFiles().join(' ')}`);
});

test('QueueDirectory that is a file rejected', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());
  const file = path.join(ph.dir, 'plain-file');
  fs.writeFileSync(file, 'not a queue\n');

  const cases: Array<[string, string[], RegExp]> = [
    [file, ['-bp'], /^posthorn: QueueDirectory \S+ is a file, not a directory\./m],
    [file, ['-odq', '-t'], /^posthorn: QueueDirectory \S+ is a file, not a directory\./m],
    [`${file}/sub`, ['-bp'], new RegExp(`^posthorn: QueueDirectory \\S+/sub is invalid because ${quoteRe(file)} is a file`, 'm')],
    [`${file}/sub`, ['-odq', '-t'], /is invalid because/],
  ];
  for (const [dir, args, message] of cases) {
    const result = await ph.run(['-O', `QueueDirectory=${dir}`, ...args], 'To: alice@posthorn.test\n\nHello.\n');
    assert.equal(result.code, 78, `${dir} ${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, `${dir} ${args.join(' ')}`);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a queue\n');
});

test('missing QueueDirectory fails -bp and -q', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());
  const missing = path.join(ph.dir, 'no-such-queue');

  // As sendmail 8.17: "can not chdir(<dir>/): No such file or directory", exit 78.
  for (const args of [['-bp'], ['-q']]) {
    const result = await ph.run(['-O', `QueueDirectory=${missing}`, ...args]);
    assert.equal(result.code, 78, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stderr, `posthorn: can not chdir(${missing}/): No such file or directory\n`);
  }
  assert.equal(fs.existsSync(missing), false, 'not created');

  // A submission creates it, as the daemon does.
  const queued = await ph.run(['-O', `QueueDirectory=${missing}`, '-odq', 'alice@posthorn.test'], 'Subject: hi\n\nHello.\n');
  assert.equal(queued.code, 0, queued.stderr);
  assert.equal(fs.existsSync(missing), true);
});
