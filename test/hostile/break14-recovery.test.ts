// Queue recovery after kill -9, and while other processes work on the queue.
//
// 1. A daemon killed between writing tf<id> and renaming it to qf<id> leaves
//    tf<id> and df<id> (no 250 was sent for them). Recovery removed a tf only
//    once it was a minute old, so a daemon restarted at once kept both until
//    its next start, which may be months away. 30 kills of a busy daemon left
//    21 such pairs in the queue folder.
// 2. Recovery removed a df whose control file was missing from its listing of
//    the folder. `posthorn -Q` renames qf<id> to hf<id> (and back), and a
//    listing read while it does so can miss both names: the df of a live item
//    was removed, and its control file was later set aside as Qf ("data file
//    is missing"). The test gives recovery such a listing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { recoverQueue } from '../../src/queue/recovery';
import { QueueStore } from '../../src/queue/store';
import { Logger } from '../../src/log/logger';

/** Returns a queue id naming process `pid`, as the receiving process makes them. */
function idOf(pid: number, letters: string): string {
  return `6B4Kp0${letters}${String(pid).padStart(6, '0')}`;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-recovery-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const QF = 'V8\nT1\nK0\nN0\nP1\nXsize=5\nS<a@b>\nRP:<c@d>\n.\n';

test('recovery removes an abandoned commit', async (t) => {
  const dir = tempDir(t);
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const put = (name: string, text: string): void => fs.writeFileSync(path.join(dir, name), text);

  // Cut off by the kill: no control file yet.
  const killed = idOf(dead, 'Aa');
  put(`tf${killed}`, QF.slice(0, 20));
  put(`df${killed}`, 'body\n');
  // A commit in progress in a live process (this one).
  const live = idOf(process.pid, 'Bb');
  put(`tf${live}`, QF.slice(0, 20));
  put(`df${live}`, 'body\n');
  // A rewrite beside a complete control file, by the process that holds the lock.
  const rewrite = idOf(dead, 'Cc');
  put(`qf${rewrite}`, QF);
  put(`tf${rewrite}`, QF.slice(0, 20));
  put(`df${rewrite}`, 'body\n');
  fs.writeFileSync(path.join(dir, `lf${rewrite}`), `${process.ppid}\n`);

  await recoverQueue(dir, new Logger([], 0));
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${live}`, `df${rewrite}`, `lf${rewrite}`, `qf${rewrite}`, `tf${live}`, `tf${rewrite}`].sort());
});

test('recovery keeps a df whose control file its listing missed', async (t) => {
  const dir = tempDir(t);
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const id = idOf(dead, 'Dd');
  fs.writeFileSync(path.join(dir, `hf${id}`), QF.replace('S<a@b>', 'qheld\nS<a@b>'));
  fs.writeFileSync(path.join(dir, `df${id}`), 'body\n');

  const store = new QueueStore({ dir, superSafe: 'false', logger: new Logger([], 0) });
  const readdir = fs.promises.readdir;
  // The listing that -Q's rename of qf to hf produced: neither name in it.
  (fs.promises as { readdir: unknown }).readdir = async (...args: unknown[]) => {
    const names = (await (readdir as (...a: unknown[]) => Promise<string[]>)(...args)) as string[];
    return names.filter((name) => name !== `hf${id}`);
  };
  try {
    await store.init();
  } finally {
    (fs.promises as { readdir: unknown }).readdir = readdir;
  }
  assert.deepEqual(store.recovery?.removedOrphanDataFiles, []);
  assert.deepEqual(fs.readdirSync(dir).sort(), [`df${id}`, `hf${id}`]);
});
