import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { QueueStore } from '../../src/queue/store';
import { isProcessAlive } from '../../src/queue/lock';
import { captureLogger, makeTempDir, removeDir } from './helpers';

const ID = 'k5KCE4Kb012345';

function newStore(dir: string): QueueStore {
  return new QueueStore({ dir, superSafe: 'true', logger: captureLogger().logger });
}

/** Returns the pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.equal(child.status, 0);
  return child.pid;
}

test('lock is exclusive within a process', async () => {
  const dir = makeTempDir();
  const store = newStore(dir);
  const other = newStore(dir);

  assert.equal(await store.lock(ID), true);
  assert.equal(fs.readFileSync(`${dir}/lf${ID}`, 'utf8'), `${process.pid}\n`);
  assert.equal(await store.lock(ID), false, 'same store');
  assert.equal(await other.lock(ID), false, 'second store in this process');
  assert.equal(await other.isLocked(ID), true);

  await other.unlock(ID);
  assert.ok(fs.existsSync(`${dir}/lf${ID}`), 'unlock by a non-holder is ignored');
  await store.unlock(ID);
  assert.equal(fs.existsSync(`${dir}/lf${ID}`), false);
  assert.equal(await other.lock(ID), true);
  removeDir(dir);
});

test('lock held by live process is refused', async () => {
  const dir = makeTempDir();
  fs.writeFileSync(`${dir}/lf${ID}`, `${process.ppid}\n`);
  const store = newStore(dir);

  assert.equal(await store.lock(ID), false);
  assert.equal(await store.isLocked(ID), true);
  assert.equal(fs.readFileSync(`${dir}/lf${ID}`, 'utf8'), `${process.ppid}\n`);
  removeDir(dir);
});

test('lock of dead process is taken over', async () => {
  const dir = makeTempDir();
  fs.writeFileSync(`${dir}/lf${ID}`, `${deadPid()}\n`);
  const store = newStore(dir);

  assert.equal(await store.isLocked(ID), false);
  assert.equal(await store.lock(ID), true);
  assert.equal(fs.readFileSync(`${dir}/lf${ID}`, 'utf8'), `${process.pid}\n`);
  // While a lock is held, its lf is a hard link to this process's ".lfpid.<pid>.<n>" file.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => !f.startsWith(`.lfpid.${process.pid}.`)), [`lf${ID}`]);
  assert.equal(fs.statSync(`${dir}/lf${ID}`).nlink, 2);
  await store.unlock(ID);
  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(dir);
});

test('lock file without pid is stale only when old', async () => {
  const dir = makeTempDir();
  const lockPath = `${dir}/lf${ID}`;
  fs.writeFileSync(lockPath, '');
  const store = newStore(dir);
  assert.equal(await store.lock(ID), false, 'may still be being written');

  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lockPath, old, old);
  assert.equal(await store.lock(ID), true);
  removeDir(dir);
});

test('concurrent lock calls give one owner', async () => {
  const dir = makeTempDir();
  fs.writeFileSync(`${dir}/lf${ID}`, `${deadPid()}\n`);
  const stores = Array.from({ length: 8 }, () => newStore(dir));

  const results = await Promise.all(stores.map((store) => store.lock(ID)));
  assert.equal(results.filter(Boolean).length, 1);
  removeDir(dir);
});

test('repeated locking adds one exit hook', () => {
  // In a child process: locks held by other tests here would keep the pid file (and its hook) alive.
  const dir = makeTempDir();
  const script = `
    const { QueueStore } = require(${JSON.stringify(require.resolve('../../src/queue/store'))});
    const logger = { child() { return this; }, info() {}, error() {}, warn() {}, notice() {}, log() {} };
    const store = new QueueStore({ dir: ${JSON.stringify(dir)}, superSafe: 'true', logger });
    (async () => {
      const before = process.listenerCount('exit');
      for (let i = 0; i < 30; i++) {
        if (!(await store.lock(${JSON.stringify(ID)}))) throw new Error('lock refused');
        await store.unlock(${JSON.stringify(ID)});
      }
      console.log(process.listenerCount('exit') - before);
    })();
  `;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  // The pid file goes with the last lock and comes back with the next one; its exit hook is set once.
  assert.ok(Number(child.stdout.trim()) <= 1, `${child.stdout.trim()} exit listeners added`);
  assert.deepEqual(fs.readdirSync(dir), []);
  removeDir(dir);
});

test('zombie process counts as dead', async () => {
  // The background child exits after the parent has become `sleep 5`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const state = (): string => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    };
    for (let i = 0; i < 100 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(state(), 'Z');
    assert.equal(isProcessAlive(pid), false);
    assert.equal(isProcessAlive(parent.pid!), true);
    assert.equal(isProcessAlive(process.pid), true);
  } finally {
    parent.kill();
  }
});
