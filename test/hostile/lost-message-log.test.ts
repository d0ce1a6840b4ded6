// What an administrator reads when a message is lost or a command's reader
// goes away: the log line of a body cut off by Timeout.datablock must carry
// the message's queue id (the one in its df name), and `-bp` piped into a
// reader that stops early (mailq | head -1) must end quietly.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { baseMc, posthornBin, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { waitFor } from '../helpers/process';
import { RawConnection, receivingId } from './data-stream-support';

const FROM = 'alice@client.example';
const QUEUED = 30;

let ph: Posthorn;

before(async () => {
  // DeliveryMode=queue keeps the messages of the -bp test in the queue.
  ph = await startPosthorn({
    mc: baseMc({ extra: ["FEATURE(`nocanonify')"] }),
    args: ['-O', 'Timeout.datablock=1s', '-O', 'DeliveryMode=queue'],
  });
});

after(() => ph.stop());

test('datablock timeout logged under queue id', async () => {
  const conn = await RawConnection.open(ph.port);
  try {
    await conn.command('EHLO client.example');
    assert.match(await conn.startData(FROM, 'bob@posthorn.test'), /^354 /);
    await conn.write('Subject: cut off\r\n\r\n' + 'a line of the body\r\n'.repeat(1000));
    await waitFor('the data file', () => ph.queueFiles().some((f) => f.startsWith('df')), 10_000);
    const id = receivingId(ph);

    assert.match(await conn.reply(), /^421 4\.4\.1 /);
    const [line] = await ph.waitForLog(/^.*timeout waiting for input .* during message collect.*$/m);
    assert.match(line, new RegExp(`: ${id}: timeout waiting for input from `));
    await waitFor('the data file removed', () => !ph.queueFiles().includes(`df${id}`), 10_000);
  } finally {
    conn.destroy();
  }
});

test('-bp into a pipe closed early', async () => {
  const conn = await RawConnection.open(ph.port);
  try {
    await conn.command('EHLO client.example');
    for (let i = 0; i < QUEUED; i++) {
      assert.match(await conn.startData(FROM, 'bob@posthorn.test'), /^354 /);
      await conn.write(`Subject: queued ${i}\r\n\r\nbody\r\n.\r\n`);
      assert.match(await conn.reply(), /^250 2\.0\.0 /);
    }
    await conn.command('QUIT');
  } finally {
    conn.destroy();
  }

  // Like `mailq | head -1`: the reader closes its end after the first chunk.
  const child = spawn(process.execPath, [posthornBin, '-C', ph.mcPath, '-bp'], { cwd: ph.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));

  assert.doesNotMatch(stderr, /Unhandled 'error' event/);
  assert.doesNotMatch(stderr, /EPIPE/);
  // 141 is what a shell reports for sendmail ended by SIGPIPE; 0 if all output left before the close.
  assert.ok(code === 141 || code === 0, `exit code ${code} with: ${stderr}`);
});
