// A full disk: the queue sits on a small tmpfs mounted for this test. Once it
// fills up, messages get 452 (never a 5xx, never a crash), every message that
// got a 250 is intact in the queue, and all of them are delivered once space is
// back. Mounting needs root: outside CI the test is skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { startSinkHop } from '../helpers/e2e-setup';
import { mountQueueDisk } from '../helpers/queue-disk';

test('full queue disk gives 452', async (t) => {
  const disk = mountQueueDisk(t, '640k');
  if (!disk) return;
  const { mountPoint, queueDir } = disk;
  // MinFreeBlocks=0, so that the writes themselves run out of space.
  const { ph, sink } = await startSinkHop(t, {
    queueDir,
    args: ['-O', 'DeliveryMode=queueonly', '-O', 'MinFreeBlocks=0', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });

  // 100 kB messages: about six fit.
  const accepted = new Map<string, string>();
  const failures: string[] = [];
  for (let i = 0; i < 12; i++) {
    const body = `message ${i}\r\n` + `${String(i).padStart(3, '0')}${'x'.repeat(96)}\r\n`.repeat(1000);
    const replies = await rawSmtp(ph.port, [
      'EHLO client.example', 'MAIL FROM:<a@posthorn.test>', 'RCPT TO:<bob@remote.example>', 'DATA',
      `Subject: full ${i}\r\n\r\n${body}.\r\n`, 'QUIT',
    ]);
    const final = replies.find((r, n) => n >= 3 && !r.startsWith('354') && !r.startsWith('250 2.1')) ?? replies.join(' | ');
    const ok = /^250 2\.0\.0 (\w{14}) Message accepted/.exec(final);
    if (ok) accepted.set(ok[1], body);
    else failures.push(final);
  }
  assert.ok(accepted.size >= 1, `nothing was accepted: ${failures.join(' / ')}`);
  assert.ok(failures.length >= 1, 'the filesystem never filled up');
  for (const f of failures) assert.match(f, /^45[12] 4\.\d\.\d /, `not a temporary failure: ${f}`);
  assert.match(ph.logs(), /queueing failed, (data|control) file: ENOSPC/);

  // Every accepted message is complete on disk, and no failed one left files.
  const names = fs.readdirSync(queueDir).filter((n) => /^(qf|df|tf)/.test(n)).sort();
  const ids = [...accepted.keys()].sort();
  assert.deepEqual(names, [...ids.map((id) => `df${id}`), ...ids.map((id) => `qf${id}`)].sort());
  for (const [id, body] of accepted) {
    assert.equal(fs.readFileSync(path.join(queueDir, `df${id}`), 'latin1'), body, `df${id} differs`);
  }

  // The daemon is still up and takes mail again once there is space.
  execFileSync('mount', ['-o', 'remount,size=16m', mountPoint]);
  const after = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@posthorn.test>', 'RCPT TO:<bob@remote.example>', 'DATA', 'Subject: later\r\n\r\nlater\r\n.\r\n', 'QUIT']);
  assert.match(after[5], /^250 2\.0\.0 \w{14} Message accepted/);

  const run = await ph.run(['-q']);
  assert.equal(run.code, 0, run.stderr);
  const messages = await sink.waitForMessages(accepted.size + 1, 30_000);
  const delivered = messages.map((m) => /^Subject: (.*)\r$/m.exec(m.data.toString('latin1'))?.[1]).sort();
  assert.equal(delivered.length, accepted.size + 1);
  for (const m of messages) {
    const text = m.data.toString('latin1');
    const i = /^Subject: full (\d+)\r$/m.exec(text)?.[1];
    if (i === undefined) continue;
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.ok(body === `message ${i}\r\n` + `${i.padStart(3, '0')}${'x'.repeat(96)}\r\n`.repeat(1000), `body of message ${i} changed`);
  }
});

test('read-only queue disk gives 451', async (t) => {
  const disk = mountQueueDisk(t, '4m');
  if (!disk) return;
  const { mountPoint, queueDir } = disk;
  const ph = await startPosthorn({
    mc: baseMc(),
    queueDir,
    args: ['-O', 'DeliveryMode=queueonly', '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });
  t.after(() => ph.stop());

  const send = (subject: string): Promise<string[]> =>
    rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@posthorn.test>', 'RCPT TO:<bob@posthorn.test>', 'DATA', `Subject: ${subject}\r\n\r\nbody\r\n.\r\n`, 'NOOP']);

  const first = await send('before');
  assert.match(first[5], /^250 2\.0\.0 \w{14} Message accepted/);
  const before = fs.readdirSync(queueDir).sort();

  execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
  // The data file cannot be created, so DATA itself is rejected.
  const rejected = await rawSmtp(ph.port, ['EHLO client.example', 'MAIL FROM:<a@posthorn.test>', 'RCPT TO:<bob@posthorn.test>', 'DATA', 'NOOP']);
  assert.equal(rejected[4], '451 4.3.0 Error creating data file; try again later', rejected.join(' | '));
  assert.equal(rejected[5], '250 2.0.0 OK');
  assert.deepEqual(fs.readdirSync(queueDir).sort(), before);

  execFileSync('mount', ['-o', 'remount,rw', mountPoint]);
  const again = await send('writable again');
  assert.match(again[5], /^250 2\.0\.0 \w{14} Message accepted/);
});

test('MinFreeBlocks rejects MAIL with 452', async (t) => {
  const disk = mountQueueDisk(t, '640k');
  if (!disk) return;
  const { queueDir } = disk;
  const { bsize, bavail } = fs.statfsSync(queueDir);
  const ph = await startPosthorn({
    mc: baseMc(),
    queueDir,
    args: ['-O', 'DeliveryMode=queueonly', '-O', `MinFreeBlocks=${bavail - 10}`, '-O', 'RefuseLA=0', '-O', 'QueueLA=0'],
  });
  t.after(() => ph.stop());

  const replies = await rawSmtp(ph.port, [
    'EHLO client.example',
    'MAIL FROM:<a@posthorn.test> SIZE=1000',
    'RSET',
    `MAIL FROM:<a@posthorn.test> SIZE=${20 * bsize}`,
    'MAIL FROM:<a@posthorn.test>',
    'QUIT',
  ]);
  assert.equal(replies[2], '250 2.1.0 <a@posthorn.test>... Sender ok');
  assert.equal(replies[4], '452 4.4.5 Insufficient disk space; try again later');
  assert.equal(replies[5], '250 2.1.0 <a@posthorn.test>... Sender ok');
  assert.match(ph.logs(), /low on space \(localhost \[127\.0\.0\.1\] needs \d+ bytes \+ \d+ blocks in /);
});
