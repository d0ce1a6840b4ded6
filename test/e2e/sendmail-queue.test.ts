// A queue that sendmail 8.17 left behind, delivered by Posthorn: an
// administrator who replaces sendmail may have mail still queued.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { startSendmail } from '../helpers/sendmail';
import { startSink } from '../helpers/sink';
import { freePort, runCommand } from '../helpers/process';

// A body with a line that starts with a dot, a CRLF line end and no newline at the end.
const MESSAGE = 'Subject: left behind\nX-Folded: one\n two\n\nline1\n.dot\nline3 \r\nlast';

test('sendmail queue delivers after conversion', { timeout: 60_000 }, async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sink = await startSink();
  t.after(() => sink.close());
  const sendmail = await startSendmail({ bin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  const queued = await sendmail.run(['-odq', 'bob@remote.example', 'carol@remote.example'], MESSAGE);
  assert.equal(queued.code, 0, queued.stderr);

  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const files = sendmail.queueFiles();
  assert.deepEqual(files.map((f) => f.slice(0, 2)).sort(), ['df', 'qf']);
  for (const f of files) fs.copyFileSync(path.join(sendmail.queueDir, f), path.join(ph.queueDir, f));

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  await ph.waitForLog(/stat=Sent/);
  assert.equal(sink.messages.length, 1);
  const message = sink.messages[0];
  // sendmail adds its own host name to a sender without a domain when it sends.
  assert.equal(message.from, 'root@mx.posthorn.test');
  assert.deepEqual(message.to, ['bob@remote.example', 'carol@remote.example']);
  const text = message.data.toString('latin1');
  const [head, body] = text.split('\r\n\r\n');
  assert.equal(body, 'line1\r\n.dot\r\nline3 \r\nlast\r\n');
  assert.match(head, /^Subject: left behind$/m);
  assert.match(head, /^X-Folded: one\r\n two$/m);
  assert.match(head, /^Message-Id: <.*@mx\.sendmail\.test>$/m);
  // Return-Path: <$g> and Full-Name: are for mailers with the P and x flags only.
  assert.doesNotMatch(head, /^Return-Path:/m);
  assert.doesNotMatch(head, /^Full-Name:/m);
  assert.doesNotMatch(text, /[\x80-\xff]/);
  assert.deepEqual(ph.queueFiles().filter((f) => !f.startsWith('.')), []);
});

test('--to-sendmail-queue hands the queue to sendmail', { timeout: 60_000 }, async (t) => {
  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sink = await startSink();
  t.after(() => sink.close());
  const extra = ["define(`SMART_HOST', `[127.0.0.1]')", `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`];
  const ph = await startPosthorn({ mc: baseMc({ extra }), args: ['-O', 'DeliveryMode=queue'] });
  t.after(() => ph.stop());
  const queued = await ph.run(['-odq', 'bob@remote.example', 'carol@remote.example'], 'Subject: going back\nX-Folded: one\n two\n\nline1\n.dot\nlast\n');
  assert.equal(queued.code, 0, queued.stderr);

  // Not while the daemon runs: it could deliver items while they change format.
  const whileRunning = await ph.run(['--to-sendmail-queue']);
  assert.equal(whileRunning.code, 75);
  assert.match(whileRunning.stderr, /a mail daemon answers at 127\.0\.0\.1 port \d+; stop it/);
  // A configuration whose first listener is not open still finds the daemon on its second.
  const twoListeners = path.join(ph.dir, 'two-listeners.mc');
  const closedPort = await freePort();
  const mc = fs.readFileSync(ph.mcPath, 'utf8').replace(/^DAEMON_OPTIONS\(/m, `DAEMON_OPTIONS(\`Port=${closedPort}, Addr=127.0.0.1, Name=MSA2')\nDAEMON_OPTIONS(`);
  fs.writeFileSync(twoListeners, mc);
  const secondOnly = await runCommand(process.execPath, [path.join(__dirname, '..', '..', 'src', 'cli', 'main.js'), '-C', twoListeners, '--to-sendmail-queue']);
  assert.equal(secondOnly.code, 75, secondOnly.stderr);
  assert.match(secondOnly.stderr, new RegExp(`a mail daemon answers at 127\\.0\\.0\\.1 port ${ph.port}; stop it`));
  await ph.kill('SIGTERM');
  const exported = await ph.run(['--to-sendmail-queue']);
  assert.equal(exported.code, 0, exported.stderr);
  assert.match(exported.stdout, /^1 items rewritten in sendmail's format in /);
  const files = ph.queueFiles().filter((f) => !f.startsWith('.'));
  assert.deepEqual(files.map((f) => f.slice(0, 2)).sort(), ['df', 'qf']);
  const qf = fs.readFileSync(path.join(ph.queueDir, files.find((f) => f.startsWith('qf'))!), 'latin1');
  assert.doesNotMatch(qf, /^X/m);
  assert.equal(fs.readFileSync(path.join(ph.queueDir, files.find((f) => f.startsWith('df'))!), 'latin1'), 'line1\n.dot\nlast\n');
  // posthorn still lists what it wrote in sendmail's format.
  const listed = await ph.run(['-bp']);
  assert.match(listed.stdout, /<carol@remote\.example>/);

  const sendmail = await startSendmail({ bin, smartHost: { addr: '127.0.0.1', port: sink.port } });
  t.after(() => sendmail.stop());
  for (const f of files) fs.copyFileSync(path.join(ph.queueDir, f), path.join(sendmail.queueDir, f));
  // With -v sendmail runs the queue in the foreground.
  const run = await sendmail.run(['-q', '-v']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(sendmail.queueFiles(), [], 'sendmail delivered the item and removed it');
  assert.equal(sink.messages.length, 1);
  const message = sink.messages[0];
  assert.equal(message.from, 'root@mx.posthorn.test');
  assert.deepEqual([...message.to].sort(), ['bob@remote.example', 'carol@remote.example']);
  const [head, body] = message.data.toString('latin1').split('\r\n\r\n');
  assert.equal(body, 'line1\r\n.dot\r\nlast\r\n');
  assert.match(head, /^Subject: going back\r\nX-Folded: one\r\n two$/m);
  assert.doesNotMatch(head, /^Return-Path:/m);
});
