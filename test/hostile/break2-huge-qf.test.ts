// A control file of 600 MiB (sparse, so it costs no disk) in the queue
// folder. Control files above 64 MiB are not read: a delivery sets the item
// aside as Qf without reading it, and mailq shows why, so neither the
// daemon's memory nor mailq's grows with the file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { sleep } from '../helpers/process';

const HUGE_ID = '6B4NZZZZ009997';
const HUGE_SIZE = 600 * 1024 * 1024;

/** Returns the peak resident memory of a process in MiB, from /proc (VmHWM). */
function peakMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Plants qf<HUGE_ID>, a valid head followed by a hole of zeros, and a small df. */
function plantHugeItem(queueDir: string): void {
  const qf = path.join(queueDir, `qf${HUGE_ID}`);
  fs.writeFileSync(qf, 'V8\nT1700000000\nK0\nN0\nP30\nS<snd@posthorn.test>\n');
  fs.truncateSync(qf, HUGE_SIZE);
  fs.writeFileSync(path.join(queueDir, `df${HUGE_ID}`), 'Hello.\n');
}

test('huge control file set aside', { timeout: 120_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=deferred'] });
  t.after(() => ph.stop());

  plantHugeItem(ph.queueDir);

  const etrn = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN #mqueue', 'QUIT']);
  assert.equal(etrn[2], '250 2.0.0 Queuing for queue group mqueue started');
  await ph.waitForLog(new RegExp(`${HUGE_ID}: `), 30_000);
  await sleep(1000);

  const logged = ph.logs().split('\n').filter((line) => line.includes(HUGE_ID));
  assert.ok(!logged.some((line) => /RangeError/.test(line)), `logged as a bug:\n${logged.join('\n').slice(0, 600)}`);
  assert.ok(ph.queueFiles().includes(`Qf${HUGE_ID}`), `not set aside; queue: ${ph.queueFiles().join(' ')}`);
  const peak = peakMiB(ph.proc.pid!);
  assert.ok(peak < 300, `the daemon's peak memory reached ${Math.round(peak)} MiB`);
});

test('mailq with a huge control file', { timeout: 120_000 }, async (t) => {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  t.after(() => ph.stop());
  plantHugeItem(ph.queueDir);

  const mailq = await ph.run(['-bp']);
  assert.equal(mailq.code, 0);
  assert.doesNotMatch(mailq.stdout, /Cannot create a string/, `mailq shows a JavaScript limit as the reason:\n${mailq.stdout}`);
});
