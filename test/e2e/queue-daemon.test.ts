// The daemon's PidFile, signals (SIGHUP reload, SIGTERM during DATA), the -X
// transcript and the -D debug file, run against the real daemon.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';
import { rawSmtp, StepClient } from '../helpers/clients';
import { fillQueue } from '../helpers/queue-fill';

/** A busy test machine must not make the daemon refuse connections or hold back queue runs. */
const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

/** Rejects when `promise` does not settle within `ms`, so that a stuck daemon fails the test. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

test('PidFile expanded, locked and unlinked', async (t) => {
  const mc = baseMc({ extra: [...NO_LOAD_LIMITS, "define(`confPID_FILE', `@DIR@/pid-${daemon_info}-$j')"] });
  const ph = await startPosthorn({ mc, args: ['-q30m', '-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const pidPath = path.join(ph.dir, 'pid-SMTP+queueing@00:30:00-mx.posthorn.test');

  await waitFor('the PidFile', () => fs.existsSync(pidPath), 10_000);
  const [pidLine, commandLine] = fs.readFileSync(pidPath, 'utf8').split('\n');
  assert.equal(Number(pidLine), ph.proc.pid);
  assert.match(commandLine, /^posthorn -bD -C \S+sendmail\.mc -q30m -O DeliveryMode=queueonly$/);
  assert.equal(fs.statSync(pidPath).mode & 0o777, 0o600);

  // A second daemon with the same PidFile stops before it listens.
  const second = await ph.run(['-bD', '-q30m']);
  assert.equal(second.code, 69, second.stderr);
  assert.ok(
    second.stderr.endsWith(`posthorn: unable to write pid to ${pidPath}: file in use by another process\n`),
    second.stderr,
  );
  assert.equal(Number(fs.readFileSync(pidPath, 'utf8').split('\n')[0]), ph.proc.pid, 'the first keeps its file');
  assert.match(ph.logs(), /unable to write pid to .*: file in use by another process/);

  await bounded(ph.kill('SIGTERM'), 30_000, 'the daemon to exit on SIGTERM');
  assert.equal(ph.proc.exitCode, 0);
  assert.equal(fs.existsSync(pidPath), false, 'unlinked at exit');
});

test('SIGHUP reloads without dropping a session', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  await fillQueue(ph.port, [{ from: 'a@posthorn.test', to: ['b@posthorn.test'], subject: 'queued before', body: 'x' }]);

  const open = await StepClient.connect(ph.port);
  t.after(() => open.socket.destroy());
  assert.match(await open.reply(), /^220 mx\.posthorn\.test ESMTP Posthorn/);
  assert.match(await open.command('EHLO old.posthorn.test'), /^250-/);
  assert.match(await open.command('MAIL FROM:<a@posthorn.test>'), /^250 /);

  fs.appendFileSync(ph.mcPath, "define(`confSMTP_LOGIN_MSG', `$j reloaded greeting')\n");
  ph.proc.kill('SIGHUP');
  await ph.waitForLog(/restarting posthorn due to signal/);

  const [greeting] = await rawSmtp(ph.port, ['QUIT']);
  assert.equal(greeting, '220 mx.posthorn.test ESMTP reloaded greeting');

  // The session opened before the reload finishes its transaction.
  assert.match(await open.command('RCPT TO:<b@posthorn.test>'), /^250 /);
  assert.match(await open.command('DATA'), /^354 /);
  assert.match(await open.command('Subject: across SIGHUP\r\n\r\nbody\r\n.'), /^250 2\.0\.0 \S+ Message accepted/);
  assert.match(await open.command('QUIT'), /^221 /);
  assert.equal(ph.queueFiles().filter((f) => f.startsWith('qf')).length, 2, 'queued mail kept');
  assert.equal(ph.proc.exitCode, null, 'still running');
});

test('SIGTERM lets DATA finish, then exits', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());

  const idle = await StepClient.connect(ph.port);
  const busy = await StepClient.connect(ph.port);
  t.after(() => {
    idle.socket.destroy();
    busy.socket.destroy();
  });
  await idle.reply();
  await busy.reply();
  await idle.command('EHLO idle.posthorn.test');
  await busy.command('EHLO busy.posthorn.test');
  await busy.command('MAIL FROM:<a@posthorn.test>');
  await busy.command('RCPT TO:<b@posthorn.test>');
  assert.match(await busy.command('DATA'), /^354 /);
  busy.send('Subject: half\r\n\r\nfirst half\r\n');

  const exited = new Promise((resolve) => ph.proc.once('exit', resolve));
  ph.proc.kill('SIGTERM');
  await ph.waitForLog(/stopping daemon, reason=SIGTERM/);
  // Not yet: the message is still being received.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(ph.proc.exitCode, null);
  assert.equal(await idle.reply(1_000).catch(() => 'none'), 'none', 'idle session not closed while DATA runs');

  busy.send('second half\r\n.\r\n');
  const accepted = await busy.reply();
  const id = /^250 2\.0\.0 (\S+) Message accepted/.exec(accepted)?.[1];
  assert.ok(id, accepted);
  assert.equal(await idle.reply(), '421 4.3.2 Shutting down');
  await bounded(exited, 30_000, 'the daemon to exit on SIGTERM');
  assert.equal(ph.proc.exitCode, 0);

  const files = ph.queueFiles().filter((f) => !f.endsWith('.pid'));
  assert.deepEqual(files, [`df${id}`, `qf${id}`], 'one complete item and nothing half-written');
});

test('SIGTERM aborts a stalled DATA cleanly', { timeout: 60_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const busy = await StepClient.connect(ph.port);
  t.after(() => busy.socket.destroy());
  await busy.reply();
  await busy.command('EHLO busy.posthorn.test');
  await busy.command('MAIL FROM:<a@posthorn.test>');
  await busy.command('RCPT TO:<b@posthorn.test>');
  await busy.command('DATA');
  busy.send('Subject: never finished\r\n\r\npart\r\n');
  await waitFor('the data file', () => ph.queueFiles().some((f) => f.startsWith('df')), 10_000);

  await bounded(ph.kill('SIGTERM'), 30_000, 'the daemon to exit on SIGTERM');
  assert.equal(ph.proc.exitCode, 0);
  assert.deepEqual(ph.queueFiles().filter((f) => /^(df|qf|tf)/.test(f)), [], 'the partial message is removed');
});

test('-X transcript and -D debug file', async (t) => {
  const transcript = path.join(fs.mkdtempSync('/tmp/posthorn-x-'), 'transcript');
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly', '-X', transcript] });
  t.after(() => ph.stop());
  t.after(() => fs.rmSync(path.dirname(transcript), { recursive: true, force: true }));
  await fillQueue(ph.port, [{ from: 'a@posthorn.test', to: ['b@posthorn.test'], subject: 'traced', body: 'traced body' }], {
    connections: 1,
  });

  const text = await waitFor('the transcript', () => {
    const content = fs.existsSync(transcript) ? fs.readFileSync(transcript, 'utf8') : '';
    return content.includes('>>> 221') ? content : undefined;
  }, 10_000);
  // Session 00001 is the start-up probe of the test helper; find the one that sent mail.
  const tag = /^(\d{5}) <<< EHLO fill\.posthorn\.test$/m.exec(text)?.[1];
  assert.ok(tag, text);
  assert.match(text, new RegExp(`^${tag} === CONNECT 127\\.0\\.0\\.1$`, 'm'));
  assert.match(text, new RegExp(`^${tag} >>> 220 mx\\.posthorn\\.test `, 'm'));
  assert.match(text, new RegExp(`^${tag} <<< traced body$`, 'm'));
  assert.match(text, new RegExp(`^${tag} >>> 250 2\\.0\\.0 \\S+ Message accepted for delivery$`, 'm'));

  const debugFile = path.join(ph.dir, 'debug.log');
  const run = await ph.run(['-D', debugFile, '-d40.1', '-q']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '', 'debug output goes to the file, not stdout');
  assert.match(fs.readFileSync(debugFile, 'utf8'), /^runqueue: 1 item\(s\) selected, QueueSortOrder=priority/m);

  const toStdout = await ph.run(['-d40.1', '-bp']);
  assert.equal(toStdout.code, 0, toStdout.stderr);

  const order = await ph.run(['-d40.1', '-D', debugFile, '-q']);
  assert.equal(order.code, 64);
  assert.match(order.stderr, /-D file must be before -d/);

  const cannot = await ph.run(['-D', '/nonexistent-dir/debug', '-d0.1', '-bp']);
  assert.equal(cannot.code, 73);
  assert.match(cannot.stderr, /cannot open \/nonexistent-dir\/debug/);
});

test('SIGTERM while deliveries hang: the daemon exits and the items stay queued', { timeout: 90_000 }, async (t) => {
  // A next hop that accepts connections and never greets.
  const held: net.Socket[] = [];
  const silent = net.createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of held) socket.destroy();
    silent.close();
  });
  const hopPort = (silent.address() as net.AddressInfo).port;
  const mc = baseMc({
    extra: [...NO_LOAD_LIMITS, "define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${hopPort}')`],
  });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const ids = await fillQueue(
    ph.port,
    [1, 2, 3].map((n) => ({ from: 'a@posthorn.test', to: [`b${n}@remote.example`], subject: `held ${n}`, body: 'x' })),
  );

  // ETRN starts the deliveries, which wait for a greeting that never comes.
  const replies = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN #mqueue', 'QUIT']);
  assert.equal(replies[2], '250 2.0.0 Queuing for queue group mqueue started');
  await waitFor('three connections to the silent next hop', () => held.length >= 3, 20_000);

  await bounded(ph.kill('SIGTERM'), 60_000, 'the daemon to exit on SIGTERM');
  assert.equal(ph.proc.exitCode, 0);
  for (const id of ids) assert.ok(ph.queueFiles().includes(`qf${id}`), `qf${id} still queued`);
});
