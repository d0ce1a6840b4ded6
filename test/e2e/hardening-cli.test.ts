// End-of-data smuggling through the command line: -t reads a message from
// standard input, -bs speaks SMTP on it. The queue (DeliveryMode=queueonly)
// shows exactly which bytes were accepted.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';

let ph: Posthorn;
const QUEUE_ONLY = ['-O', 'DeliveryMode=queueonly'];

before(async () => {
  ph = await startPosthorn({ mc: baseMc(), args: [...QUEUE_ONLY, '-O', 'RefuseLA=0', '-O', 'QueueLA=0'] });
});
after(() => ph.stop());

/** Runs the command line and returns the body files it added to the queue, then empties the queue. */
async function runAndTakeQueue(args: string[], input: string): Promise<{ stdout: string; bodies: string[]; files: string[] }> {
  const result = await ph.run([...args, ...QUEUE_ONLY], Buffer.from(input, 'latin1'));
  const files = ph.queueFiles();
  const bodies = files.filter((f) => f.startsWith('df')).map((f) => fs.readFileSync(path.join(ph.queueDir, f), 'latin1'));
  for (const f of files) fs.rmSync(path.join(ph.queueDir, f));
  return { stdout: result.stdout, bodies, files };
}

const HEAD = 'To: bob@posthorn.test\nSubject: smuggling\n\n';

test('-t: lone dot ends the message', async () => {
  const got = await runAndTakeQueue(['-t', '-f', 'a@posthorn.test'], HEAD + 'line1\n.\nMAIL FROM:<evil@example.org>\nline2\n');
  assert.deepEqual(got.bodies, ['line1\r\n']);
});

test('-t -i: lone dot is data', async () => {
  const got = await runAndTakeQueue(['-t', '-i', '-f', 'a@posthorn.test'], HEAD + 'line1\n.\nline2\n');
  assert.deepEqual(got.bodies, ['line1\r\n.\r\nline2\r\n']);
});

test('-t: CRLF input ends at dot line', async () => {
  const got = await runAndTakeQueue(['-t', '-f', 'a@posthorn.test'], HEAD.replace(/\n/g, '\r\n') + 'line1\r\n.\r\nline2\r\n');
  assert.deepEqual(got.bodies, ['line1\r\n']);
});

test('-t: bare CR dot is data', async () => {
  // The bare CRs become line ends after the check for a lone dot, so the message goes on.
  const got = await runAndTakeQueue(['-t', '-f', 'a@posthorn.test'], HEAD + 'line1\r.\rline2\n..x\n');
  assert.deepEqual(got.bodies, ['line1\r\n.\r\nline2\r\n..x\r\n']);
});

const BS_START = 'EHLO client.example\r\nMAIL FROM:<a@posthorn.test>\r\nRCPT TO:<bob@posthorn.test>\r\nDATA\r\n';

test('-bs: bare LF dot is rejected', async () => {
  const got = await runAndTakeQueue(['-bs'], BS_START + 'Subject: y\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.org>\r\n.\r\nNOOP\r\nQUIT\r\n');
  const lines = got.stdout.split('\r\n');
  assert.ok(lines.includes('421 4.5.0 Bare linefeed (LF) not allowed'), got.stdout);
  assert.ok(!lines.includes('250 2.0.0 OK'), got.stdout);
  assert.deepEqual(got.files, []);
});

test('-bs: bare CR dot is rejected', async () => {
  const got = await runAndTakeQueue(['-bs'], BS_START + 'Subject: y\r\n\r\nfirst\r.\r\nsecond\r\n.\r\nQUIT\r\n');
  assert.ok(got.stdout.includes('\r\n421 4.5.0 Bare carriage return (CR) not allowed'), got.stdout);
  assert.deepEqual(got.files, []);
});

test('-bs: EOF in DATA leaves no file', async () => {
  const got = await runAndTakeQueue(['-bs'], BS_START + 'Subject: y\n\nfirst\n.\nQUIT\n');
  assert.ok(got.stdout.includes('\r\n354 '), got.stdout);
  assert.deepEqual(got.files, []);
});

test('-bs: clean message queued exactly', async () => {
  const got = await runAndTakeQueue(['-bs'], BS_START + 'Subject: y\r\n\r\n..dot\r\nend\r\n.\r\nQUIT\r\n');
  assert.match(got.stdout, /\r\n250 2\.0\.0 \w{14} Message accepted for delivery\r\n221 /);
  assert.deepEqual(got.bodies, ['.dot\r\nend\r\n']);
});
