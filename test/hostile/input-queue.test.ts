// Hostile files planted in the queue folder by a local user: garbage control
// files, a missing df, a df without qf, names that are not queue ids,
// symlinks, a directory and a 20 MB header line. -bp and -qf must neither
// crash nor lose the good items, and -qf must log what it set aside.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, type CommandResult } from '../helpers/process';

interface QueueSetup {
  dir: string;
  queueDir: string;
  mailDir: string;
  logPath: string;
  run(args: string[], input?: string): Promise<CommandResult>;
}

async function withQueue(body: (q: QueueSetup) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-input-queue-'));
  const queueDir = path.join(dir, 'mqueue');
  const mailDir = path.join(dir, 'mail');
  const logPath = path.join(dir, 'maillog');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  fs.mkdirSync(mailDir);
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(
    mcPath,
    [
      `define(\`QUEUE_DIR', \`${queueDir}')`,
      `define(\`confMAILBOX_DIR', \`${mailDir}')`,
      `define(\`confLOG_FILE', \`${logPath}')`,
      "define(`confDOMAIN_NAME', `mx.posthorn.test')",
      "LOCAL_DOMAIN(`posthorn.test')",
      "MAILER(`local')",
      '',
    ].join('\n'),
  );
  const run = (args: string[], input?: string): Promise<CommandResult> =>
    runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], { input, cwd: dir, timeoutMs: 120_000 });
  try {
    await body({ dir, queueDir, mailDir, logPath, run });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Queues one good message for alice with -odq and returns its queue id. */
async function queueGood(q: QueueSetup, subject: string): Promise<string> {
  const before = new Set(fs.readdirSync(q.queueDir));
  const result = await q.run(['-odq', '-t', '-i'], `To: alice@posthorn.test\nSubject: ${subject}\n\n${subject} body\n`);
  assert.equal(result.code, 0, result.stderr);
  const added = fs.readdirSync(q.queueDir).filter((name) => name.startsWith('qf') && !before.has(name));
  assert.equal(added.length, 1);
  return added[0].slice(2);
}

const HEAD = 'V8\nT1796421090\nK0\nN0\nP30331\nS<planted@posthorn.test>\n';

/** Plants the hostile files; ids have the queue id form so that the queue reads them. */
function plant(queueDir: string): void {
  const put = (name: string, data: string): void => fs.writeFileSync(path.join(queueDir, name), data);
  put('qf6B4LaAGa000001', 'garbage\n\x00\x01\x02\nZZZ\n');
  put('df6B4LaAGa000001', 'x\n');
  put('qf6B4LaAHu000002', `${HEAD}RP:<alice@posthorn.test>\nH??Subject: ${'x'.repeat(20_000_000)}\n.\n`);
  put('df6B4LaAHu000002', 'huge header body\n');
  put('qf6B4LaANo000003', `${HEAD}RP:<alice@posthorn.test>\n.\n`);
  put('df6B4LaAOr000004', 'orphan\n');
  fs.symlinkSync('/etc/hostname', path.join(queueDir, 'qf6B4LaALi000005'));
  put('df6B4LaALi000005', 'x\n');
  fs.symlinkSync('/nonexistent', path.join(queueDir, 'qf6B4LaADa000006'));
  fs.mkdirSync(path.join(queueDir, 'qf6B4LaADi000007'));
  put('qf6B4LaAEm000008', '');
  put('df6B4LaAEm000008', '');
  put('qf6B4LaANe000010', 'V8\nT-99999999999999999999\nK0\nN-5\nP-1\nS<a@b>\nRP:<alice@posthorn.test>\n.\n');
  put('df6B4LaANe000010', 'neg\n');
  put('qf6B4LaATr000011', `${HEAD}RP:<alice@posthorn.test>\n`);
  put('df6B4LaATr000011', 'truncated\n');
  put('qfnot-a-queue-id', `${HEAD}RP:<alice@posthorn.test>\n.\n`);
  put('dfnot-a-queue-id', 'not an id\n');
  put('random.txt', 'junk\n');
}

test('mailq lists good items among garbage', async () => {
  await withQueue(async (q) => {
    const good = [await queueGood(q, 'first'), await queueGood(q, 'second')];
    plant(q.queueDir);
    const result = await q.run(['-bp']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /^\s+at /m);
    for (const id of good) assert.match(result.stdout, new RegExp(`^${id} `, 'm'));
    assert.match(result.stdout, /^6B4LaAGa000001 \(unreadable control file/m);
    assert.match(result.stdout, /^6B4LaATr000011 \(unreadable control file: .*truncated/m);
    assert.match(result.stdout, /^6B4LaAHu000002 /m);
    assert.match(result.stdout, /Total requests: 11/);
  });
});

test('mailq qf symlink hides target', async () => {
  await withQueue(async (q) => {
    plant(q.queueDir);
    const result = await q.run(['-bp']);
    const firstLine = fs.readFileSync('/etc/hostname', 'utf8').split('\n')[0];
    const line = result.stdout.split('\n').find((l) => l.startsWith('6B4LaALi000005')) ?? '';
    assert.ok(!line.includes(`"${firstLine}"`), line);
  });
});

test('queue run delivers good items among garbage', async () => {
  await withQueue(async (q) => {
    const good = [await queueGood(q, 'first'), await queueGood(q, 'second')];
    plant(q.queueDir);
    const result = await q.run(['-qf']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /^\s+at /m);

    const mailbox = fs.readFileSync(path.join(q.mailDir, 'alice'), 'latin1');
    assert.match(mailbox, /first body/);
    assert.match(mailbox, /second body/);
    assert.match(mailbox, /huge header body/);

    const log = fs.readFileSync(q.logPath, 'utf8');
    for (const id of good) assert.match(log, new RegExp(`${id}: to=<alice@posthorn.test>.*stat=Sent`));
    for (const id of ['6B4LaAGa000001', '6B4LaAEm000008', '6B4LaANe000010', '6B4LaATr000011', '6B4LaANo000003']) {
      assert.match(log, new RegExp(`${id}: unparseable control file, renamed to Qf${id}`));
    }

    const left = fs.readdirSync(q.queueDir);
    for (const id of good) assert.ok(!left.includes(`qf${id}`), `qf${id} left`);
    assert.ok(left.includes('Qf6B4LaAGa000001'));
    assert.ok(left.includes('df6B4LaAOr000004'), 'the orphan df was removed');
    assert.ok(left.includes('qfnot-a-queue-id'), 'a file that is not a queue item was touched');
    assert.ok(left.includes('random.txt'));
  });
});
