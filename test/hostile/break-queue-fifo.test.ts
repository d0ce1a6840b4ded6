// A FIFO in the queue folder with the name of a control file. Queue files
// are opened with O_NONBLOCK, so open() returns at once instead of waiting for
// a writer, and a file that is not a regular one is unreadable. In the daemon
// a waiting open() would block the event loop, so one ETRN would stop every
// session; mailq and -qf would hang.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { runCommand } from '../helpers/process';

const FIFO_ID = '6B4NZZZZ009999';

/** Opens a FIFO for writing and closes it, so that a reader blocked in open() gets end of file. */
function releaseFifo(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader is waiting.
  }
}

async function startWithFifo(t: { after(fn: () => Promise<void> | void): void }): Promise<{ ph: Posthorn; fifo: string }> {
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=queueonly'] });
  const fifo = path.join(ph.queueDir, `qf${FIFO_ID}`);
  execFileSync('mkfifo', [fifo]);
  t.after(async () => {
    releaseFifo(fifo);
    fs.rmSync(fifo, { force: true });
    await ph.stop();
  });
  return { ph, fifo };
}

test('ETRN with a FIFO in the queue', { timeout: 120_000 }, async (t) => {
  const { ph } = await startWithFifo(t);
  const etrn = await rawSmtp(ph.port, ['EHLO client.posthorn.test', 'ETRN #mqueue', 'QUIT']);
  assert.equal(etrn[2], '250 2.0.0 Queuing for queue group mqueue started');

  // A session started after the ETRN must still get its greeting.
  const next = await rawSmtp(ph.port, ['QUIT'], { timeoutMs: 20_000 }).catch((err: Error) => [err.message]);
  assert.match(next[0] ?? '', /^220 /, 'the daemon greets the next client');
});

test('mailq with a FIFO in the queue', { timeout: 120_000 }, async (t) => {
  const { ph } = await startWithFifo(t);
  const result = await runCommand(process.execPath, [posthornBin, '-C', ph.mcPath, '-bp'], { cwd: ph.dir, timeoutMs: 20_000 });
  assert.equal(result.signal, null, `mailq was killed after 20 s; output so far:\n${result.stdout}`);
  assert.equal(result.code, 0);
});

test('posthorn -qf with a FIFO in the queue', { timeout: 120_000 }, async (t) => {
  const { ph } = await startWithFifo(t);
  const result = await runCommand(process.execPath, [posthornBin, '-C', ph.mcPath, '-qf'], { cwd: ph.dir, timeoutMs: 20_000 });
  assert.equal(result.signal, null, `posthorn -qf was killed after 20 s; output so far:\n${result.stderr}`);
  assert.equal(result.code, 0);
});
