// PidFile: macro expansion of the name, the claim, and release at exit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { expandPidFilePath, PidFile, PidFileInUseError, readPid } from '../../src/daemon/pidfile';
import { makeTempDir, removeDir } from '../queue/helpers';

test('PidFile name macros', () => {
  const name = expandPidFilePath('/run/sm-${daemon_info}-${queue_interval}-$j.pid', {
    daemonInfo: 'SMTP+queueing@00:30:00',
    queueIntervalMs: 30 * 60_000,
    macros: new Map([['j', 'mx.example']]),
  });
  assert.equal(name, '/run/sm-SMTP+queueing@00:30:00-00:30:00-mx.example.pid');
  assert.equal(expandPidFilePath('/run/q${queue_interval}', { daemonInfo: 'SMTP', queueIntervalMs: 0 }), '/run/q00:00:00');
});

test('PidFile claim, content and release', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = path.join(dir, 'sendmail.pid');
  const pid = PidFile.claim(file, 'posthorn -bd -q15m');
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\nposthorn -bd -q15m\n`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(readPid(file), process.pid);
  pid.release();
  assert.equal(fs.existsSync(file), false);
});

test('PidFile of a live process is in use', async (t) => {
  const dir = makeTempDir();
  const file = path.join(dir, 'sendmail.pid');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
    removeDir(dir);
  });
  fs.writeFileSync(file, `${child.pid}\nother daemon\n`);
  assert.throws(
    () => PidFile.claim(file, 'posthorn -bd'),
    (err: unknown) =>
      err instanceof PidFileInUseError &&
      err.message === `unable to write pid to ${file}: file in use by another process`,
  );
  assert.equal(readPid(file), child.pid, 'the other process keeps its file');

  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const claimed = PidFile.claim(file, 'posthorn -bd');
  assert.equal(readPid(file), process.pid, 'a dead process file is taken over');
  claimed.release();
});

test('PidFile release leaves a file of another process', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = path.join(dir, 'sendmail.pid');
  const claimed = PidFile.claim(file, 'posthorn -bd');
  fs.writeFileSync(file, '1\nsomeone else\n');
  claimed.release();
  assert.equal(fs.readFileSync(file, 'utf8'), '1\nsomeone else\n');
});
