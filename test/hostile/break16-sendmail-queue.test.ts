// Reproductions for items that sendmail left in the queue folder and that
// Posthorn converts (src/queue/sendmail-queue.ts, block-copy.ts). Each test
// fails while its problem is present.
//
// - A data file that is a FIFO read as an empty file: the message went out
//   without its body, and the FIFO was replaced by the empty copy.
// - `posthorn -qI<id> -Qreason` rewrote such an item in Posthorn's format
//   without converting it: after the release it went out with bare LF line
//   ends, MAIL FROM:<root> and a size of 0.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { posthornBin } from '../helpers/posthorn';
import { runCommand } from '../helpers/process';
import { startSink, type Sink } from '../helpers/sink';

const ID = '6B57gN9a012345';
const dirs: string[] = [];
const sinks: Sink[] = [];
after(() => {
  for (const sink of sinks) sink.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Creates a queue folder with one sendmail item, a sink as smart host, and a posthorn runner that uses both. */
async function setup(sinkPort: number, daemonPort: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break16-'));
  dirs.push(dir);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const sink = await startSink({ port: sinkPort });
  sinks.push(sink);
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mcPath, [
    `define(\`QUEUE_DIR', \`${queueDir}')`,
    `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    `DAEMON_OPTIONS(\`Port=${daemonPort}, Addr=127.0.0.1, Name=MTA')`,
    "define(`SMART_HOST', `[127.0.0.1]')",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sinkPort}')`,
    "MAILER(`smtp')",
    '',
  ].join('\n'));
  const run = (args: string[]) => runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args]);
  // A control file as sendmail 8.17 writes it, with a sender without a domain.
  const qf = ['V8', 'T1700000000', 'K0', 'N0', 'P30000', '$_root@localhost', '$rlocalhost', 'Sroot', 'RPFD:bob@remote.example',
    'H?P?Return-Path: <\u0081g>', 'H??Subject: left behind', '.', ''].join('\n');
  fs.writeFileSync(path.join(queueDir, `qf${ID}`), Buffer.from(qf, 'latin1'));
  return { queueDir, sink, run };
}

test('sendmail item FIFO data file kept', { timeout: 60_000 }, async () => {
  const { queueDir, sink, run } = await setup(36201, 36202);
  const df = path.join(queueDir, `df${ID}`);
  execFileSync('mkfifo', [df]);
  const result = await run(['-q']);
  assert.equal(result.code, 0, result.stderr);
  // Before the fix: one message with the headers only, and df a regular empty file.
  assert.equal(sink.messages.length, 0);
  assert.ok(fs.lstatSync(df).isFIFO());
  assert.ok(fs.existsSync(path.join(queueDir, `qf${ID}`)));
});

test('sendmail item quarantine then release', { timeout: 60_000 }, async () => {
  const { queueDir, sink, run } = await setup(36203, 36204);
  fs.writeFileSync(path.join(queueDir, `df${ID}`), 'line1\nline2\n');
  const quarantined = await run([`-qI${ID}`, '-Qhold']);
  assert.equal(quarantined.code, 0, quarantined.stderr);
  assert.match(fs.readFileSync(path.join(queueDir, `hf${ID}`), 'utf8'), /^Xsize=14$/m);
  const released = await run(['-qQ', '-Q']);
  assert.equal(released.code, 0, released.stderr);
  const delivered = await run(['-q']);
  assert.equal(delivered.code, 0, delivered.stderr);
  assert.equal(sink.messages.length, 1);
  // Before the fix: MAIL FROM:<root> and the body "line1\nline2\n".
  assert.equal(sink.messages[0].from, 'root@mx.posthorn.test');
  assert.equal(sink.messages[0].data.toString('latin1').split('\r\n\r\n')[1], 'line1\r\nline2\r\n');
});
