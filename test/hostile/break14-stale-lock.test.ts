// Queue recovery and a stale lock. A daemon killed with SIGKILL during a
// delivery leaves lf<id> naming its dead pid. When it starts again, its
// queue recovery (running in the background) finds that lock stale, while a
// `posthorn -q` started at the same time takes the same stale lock over.
// Recovery read the old pid, then unlinked lf<id> by name: the lock of the
// queue runner was gone, the restarted daemon's own queue run locked the item
// too, and both delivered it. One of them then rewrote the control file of an
// item the other had removed, and it ended as Qf<id> (seen with kill -9 of the
// daemon beside queue runners: "Deferred: ENOENT ... df<id>", then "data file
// df<id> is missing, control file renamed to Qf<id>").
//
// The test makes the takeover happen inside recovery's staleness check: the
// moment recovery checks whether the dead pid lives, another process replaces
// the lock with its own. Recovery must then leave that lock alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { recoverQueue } from '../../src/queue/recovery';
import { Logger } from '../../src/log/logger';
import { LockFiles } from '../../src/queue/lock';
import { QueueStore } from '../../src/queue/store';
import { posthornBin } from '../helpers/posthorn';
import { runCommand } from '../helpers/process';
import { startSink } from '../helpers/sink';

const ID = '6B4Kp0Xa012345';

test('recovery keeps a stale lock that another process took over meanwhile', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The queue runner that takes the stale lock over: a live process.
  const runner = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => runner.kill('SIGKILL'));
  const dead = spawnSync(process.execPath, ['-e', '']).pid;

  fs.writeFileSync(path.join(dir, `qf${ID}`), 'V8\nT1\nS<a@b>\nRP:<c@d>\n.\n');
  fs.writeFileSync(path.join(dir, `df${ID}`), 'body\n');
  const lock = path.join(dir, `lf${ID}`);
  fs.writeFileSync(lock, `${dead}\n`);

  const kill = process.kill;
  let tookOver = false;
  process.kill = ((pid: number, signal?: string | number) => {
    if (pid === dead && !tookOver) {
      // The runner removes the stale lock and creates its own, as LockFiles.lock() does.
      tookOver = true;
      fs.unlinkSync(lock);
      fs.writeFileSync(lock, `${runner.pid}\n`);
    }
    return kill.call(process, pid, signal);
  }) as typeof process.kill;
  try {
    await recoverQueue(dir, new Logger([], 0));
  } finally {
    process.kill = kill;
  }

  assert.ok(tookOver, 'recovery checked the dead pid');
  assert.equal(fs.readFileSync(lock, 'utf8'), `${runner.pid}\n`, 'the runner still holds its lock');
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${ID}`, `lf${ID}`, `qf${ID}`]);
});

// Lock files planted in the queue folder: a dangling symlink kept the item
// locked for ever without a word in the log (its age was read through the
// link), and a folder made the takeover fail with EISDIR ("delivery failed")
// and left a folder named .lf<id>.<pid>.<uuid> that made every later queue
// recovery fail ("queue recovery failed: EISDIR").

test('a dangling symlink as lock file is taken over', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lock = path.join(dir, `lf${ID}`);
  fs.symlinkSync('/nonexistent', lock);
  const old = new Date(Date.now() - 3600_000);
  fs.lutimesSync(lock, old, old);

  const files = new LockFiles(dir);
  assert.equal(await files.isLocked(ID), false);
  assert.equal(await files.lock(ID), true);
  assert.equal(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  await files.unlock(ID);
});

test('a folder as lock file is taken over and recovery goes on', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lock = path.join(dir, `lf${ID}`);
  fs.mkdirSync(lock);
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(lock, old, old);

  const files = new LockFiles(dir);
  assert.equal(await files.lock(ID), true);
  assert.equal(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  await files.unlock(ID);

  // What a takeover by a process that has since died left behind.
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  fs.mkdirSync(path.join(dir, `.lf${ID}.${dead}.0c5e`));
  await recoverQueue(dir, new Logger([], 0));
  assert.deepEqual(fs.readdirSync(dir), []);
});

// Many processes at once on items whose locks a killed process left: the
// daemon restarted after the kill and queue runners started beside it. A
// process that found a lock stale renamed it aside, compared and deleted it.
// When another process had meanwhile taken the lock over, the lock was put
// back only if no third process had taken the free name in between. With six
// `posthorn -qf` at once over 150 such items, dozens were delivered two or
// three times and several ended as Qf ("Deferred: ENOENT ... df<id>").
test('stale locks and six runners deliver once', { timeout: 300_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sink = await startSink({ host: '127.0.0.1' });
  t.after(() => sink.close());
  const queueDir = path.join(dir, 'mqueue');
  const logPath = path.join(dir, 'maillog');
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(
    mcPath,
    [
      `define(\`QUEUE_DIR', \`${queueDir}')`,
      `define(\`confLOG_FILE', \`${logPath}')`,
      "define(`confDOMAIN_NAME', `mx.posthorn.test')",
      "define(`SMART_HOST', `[127.0.0.1]')",
      `define(\`RELAY_MAILER_ARGS', \`TCP $h ${sink.port}')`,
      "MAILER(`local')",
      "MAILER(`smtp')",
      '',
    ].join('\n'),
  );

  const store = new QueueStore({ dir: queueDir, superSafe: 'false', logger: new Logger([], 0) });
  await store.init({ recover: false });
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const now = Math.floor(Date.now() / 1000);
  const ITEMS = 150;
  for (let n = 0; n < ITEMS; n++) {
    const id = store.newId();
    const writer = await store.openDataFile(id);
    await writer.write(Buffer.from(`body ${n}\r\n`));
    await writer.close();
    await store.commit({
      id,
      created: now,
      lastAttempt: 0,
      attempts: 0,
      priority: 30000,
      flags: '',
      macros: new Map(),
      sender: 'alice@posthorn.test',
      recipients: [{ address: `r${n}@remote.example`, state: 'pending' }],
      headers: [`X-Tag: t${n}`, `Subject: t${n}`],
      bodySize: writer.size,
    });
    // The lock of the killed process that was delivering it.
    fs.writeFileSync(path.join(queueDir, `lf${id}`), `${dead}\n`);
  }

  const runs = Array.from({ length: 6 }, () =>
    runCommand(process.execPath, [posthornBin, '-C', mcPath, '-qf'], { timeoutMs: 240_000 }),
  );
  for (const r of await Promise.all(runs)) assert.equal(r.code, 0, r.stderr);

  const counts = new Map<string, number>();
  for (const m of sink.messages) {
    const tag = /^X-Tag: (\S+)/m.exec(m.data.toString('latin1'))?.[1] ?? '?';
    counts.set(tag, (counts.get(tag) ?? 0) + 1);
  }
  assert.deepEqual([...counts].filter(([, n]) => n !== 1), [], 'delivered more than once');
  assert.equal(counts.size, ITEMS);
  assert.deepEqual(fs.readdirSync(queueDir), []);
  const log = fs.readFileSync(logPath, 'utf8');
  assert.doesNotMatch(log, /renamed to Qf|delivery failed/);
});

// A process killed while it held the guard of a takeover leaves
// `.lf<id>.takeover`. The next taker and queue recovery remove it once its
// process is gone, and a guard that a live process holds makes the item count
// as locked.
test('takeover guard of a killed process', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const guard = path.join(dir, `.lf${ID}.takeover`);
  const lock = path.join(dir, `lf${ID}`);

  fs.writeFileSync(lock, `${dead}\n`);
  fs.writeFileSync(guard, `${process.ppid}\n`);
  const files = new LockFiles(dir);
  assert.equal(await files.lock(ID), false, 'a live process holds the guard');
  assert.equal(fs.readFileSync(lock, 'utf8'), `${dead}\n`);

  fs.writeFileSync(guard, `${dead}\n`);
  assert.equal(await files.lock(ID), true);
  assert.equal(fs.readFileSync(lock, 'utf8'), `${process.pid}\n`);
  assert.equal(fs.existsSync(guard), false);
  await files.unlock(ID);

  fs.writeFileSync(guard, `${dead}\n`);
  await recoverQueue(dir, new Logger([], 0));
  assert.deepEqual(fs.readdirSync(dir), []);
});
