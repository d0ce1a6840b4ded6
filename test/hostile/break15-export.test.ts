// Reproduction for `posthorn --to-sendmail-queue` on a queue with an item
// whose data file is missing. The queue's recovery set the item aside as Qf,
// and the command reported "0 items rewritten" with exit 0. So an
// administrator went back to sendmail without knowing of the item.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { freePort, runCommand } from '../helpers/process';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('export reports item without data file', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-'));
  dirs.push(dir);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mcPath, [
    `define(\`QUEUE_DIR', \`${queueDir}')`,
    `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    // A port where no daemon runs: the export refuses to run beside one.
    `DAEMON_OPTIONS(\`Port=${await freePort()}, Addr=127.0.0.1, Name=MTA')`,
    "MAILER(`smtp')",
    '',
  ].join('\n'));
  const run = (args: string[], input?: string) => runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], { input });

  assert.equal((await run(['-odq', 'bob@remote.example'], 'Subject: one\n\nbody\n')).code, 0);
  assert.equal((await run(['-odq', 'carol@remote.example'], 'Subject: two\n\nbody\n')).code, 0);
  const dataFiles = fs.readdirSync(queueDir).filter((f) => f.startsWith('df')).sort();
  assert.equal(dataFiles.length, 2);
  const lostId = dataFiles[0].slice(2);
  fs.rmSync(path.join(queueDir, dataFiles[0]));

  const exported = await run(['--to-sendmail-queue']);
  assert.match(exported.stdout, /^1 items rewritten in sendmail's format in /m);
  // Before the fix: nothing about the lost item, and exit 0.
  assert.match(exported.stdout, new RegExp(`^${lostId}: not rewritten: data file df${lostId} is missing; control file set aside as Qf${lostId}$`, 'm'));
  assert.equal(exported.code, 74, exported.stdout);
  assert.ok(fs.existsSync(path.join(queueDir, `Qf${lostId}`)));
});
