// Third-round daemon gaps against the real daemon: SIGHUP re-opening the
// listeners of changed DAEMON_OPTIONS, ConnectionRateThrottle on a bounded
// burst, and -X recording an outbound delivery.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { canConnect, freePort, waitFor } from '../helpers/process';
import { rawSmtp, StepClient } from '../helpers/clients';
import { sendToRemote, startSinkHop } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

test('SIGHUP reopens changed DAEMON_OPTIONS listeners', async (t) => {
  const ph = await startPosthorn({ mc: baseMc({ extra: NO_LOAD_LIMITS }), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  const second = await freePort();

  const open = await StepClient.connect(ph.port);
  t.after(() => open.socket.destroy());
  assert.match(await open.reply(), /^220 /);
  assert.match(await open.command('EHLO early.posthorn.test'), /^250-/);
  assert.match(await open.command('MAIL FROM:<a@posthorn.test>'), /^250 /);

  // Added: a second listener; the first one is unchanged and stays.
  fs.appendFileSync(ph.mcPath, `DAEMON_OPTIONS(\`Port=${second}, Addr=127.0.0.1, Name=MSA2')\n`);
  ph.proc.kill('SIGHUP');
  await ph.waitForLog(/restarting posthorn due to signal/);
  assert.match(ph.logs(), new RegExp(`daemon MSA2: listening on 127\\.0\\.0\\.1 port ${second}`));
  assert.doesNotMatch(ph.logs(), /daemon MTA: stopped listening/, 'the unchanged listener is kept');
  const [greeting2] = await rawSmtp(second, ['QUIT'], { timeoutMs: 10_000 });
  assert.match(greeting2, /^220 mx\.posthorn\.test ESMTP/);
  const [greeting1] = await rawSmtp(ph.port, ['QUIT'], { timeoutMs: 10_000 });
  assert.match(greeting1, /^220 mx\.posthorn\.test ESMTP/);

  // Removed: the original listener closes; its open session goes on.
  const mc = fs.readFileSync(ph.mcPath, 'utf8');
  const without = mc.replace(/^DAEMON_OPTIONS\(`Port=\d+, Addr=[^,]+, Name=MTA'\)\n/m, '');
  assert.notEqual(without, mc, 'the .mc names the MTA listener');
  fs.writeFileSync(ph.mcPath, without);
  ph.proc.kill('SIGHUP');
  await ph.waitForLog(new RegExp(`daemon MTA: stopped listening on \\S+ port ${ph.port}`));
  await waitFor('the MTA port to close', async () => ((await canConnect('127.0.0.1', ph.port)) ? undefined : true), 10_000);
  const [again] = await rawSmtp(second, ['QUIT'], { timeoutMs: 10_000 });
  assert.match(again, /^220 /);

  assert.match(await open.command('RCPT TO:<b@posthorn.test>'), /^250 /);
  assert.match(await open.command('DATA'), /^354 /);
  assert.match(await open.command('Subject: across two reloads\r\n\r\nbody\r\n.'), /^250 2\.0\.0 \S+ Message accepted/);
  assert.match(await open.command('QUIT'), /^221 /);
  assert.equal(ph.proc.exitCode, null, 'still running');
});

test('ConnectionRateThrottle defers a burst', async (t) => {
  const ph = await startPosthorn({
    mc: baseMc({ extra: [...NO_LOAD_LIMITS, "define(`confCONNECTION_RATE_THROTTLE', `2')"] }),
    args: ['-O', 'DeliveryMode=queueonly'],
  });
  t.after(() => ph.stop());
  // A burst of 6 connections: at most 2 of one second go through at once.
  const burst = await Promise.all(Array.from({ length: 6 }, () => rawSmtp(ph.port, ['QUIT'], { timeoutMs: 20_000 })));
  for (const replies of burst) {
    assert.match(replies[0], /^220 mx\.posthorn\.test ESMTP/);
    assert.match(replies[1], /^221 /);
  }
  await ph.waitForLog(/deferring connections on daemon MTA: 2 per second/);
});

test('-X records an outbound delivery', async (t) => {
  const transcript = path.join(fs.mkdtempSync('/tmp/posthorn-xo-'), 'transcript');
  t.after(() => fs.rmSync(path.dirname(transcript), { recursive: true, force: true }));
  const { ph, sink } = await startSinkHop(t, { mc: NO_LOAD_LIMITS, args: ['-X', transcript] });

  await sendToRemote(ph.port, 'traced out', 'outbound traced body');
  await sink.waitForMessages(1, 20_000);

  const linesOf = (content: string, tag: string): string[] =>
    content.split('\n').filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(6));
  let lastSeen = '';
  const ours = await waitFor('the outbound part of the transcript', () => {
    const content = fs.readFileSync(transcript, 'utf8');
    const tag = /^(\d{5}) === CONNECT mx1\.remote\.example\.?$/m.exec(content)?.[1];
    if (!tag) { lastSeen = content; return undefined; }
    const lines = linesOf(content, tag);
    const dot = lines.indexOf('>>> .');
    lastSeen = content;
    return dot > 0 && lines.slice(dot + 1).some((l) => /^<<< 250 /.test(l)) ? lines : undefined;
  }, 10_000).catch((err: Error) => {
    throw new Error(`${err.message}; transcript:\n${lastSeen}`);
  });
  assert.match(ours[1], /^<<< 220 /, ours.join('\n'));
  assert.equal(ours[2], '>>> EHLO mx.posthorn.test');
  assert.ok(ours.some((l) => /^>>> MAIL FROM:<alice@posthorn\.test>/i.test(l)), ours.join('\n'));
  assert.ok(ours.some((l) => /^>>> RCPT TO:<bob@remote\.example>/i.test(l)), ours.join('\n'));
  assert.ok(ours.some((l) => /^<<< 354 /.test(l)), ours.join('\n'));
  assert.ok(ours.includes('>>> outbound traced body'), 'the message lines are recorded');
});
