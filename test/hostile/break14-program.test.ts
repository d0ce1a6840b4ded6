// The prog mailer against hostile programs: one that leaves a background
// process holding its output, one that neither reads nor exits, and what a
// program gets of Posthorn's environment and user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { deliverToProgram } from '../../src/delivery/program';
import { runAsFor } from '../../src/delivery/run-as';
import { makeConfig } from '../delivery/fixtures';

const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'break14-prog-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function message(dir: string, body: string): { sender: string; headers: string[]; dataPath: string } {
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, body);
  return { sender: 's@x.test', headers: ['Subject: x'], dataPath };
}

/** Tests whether a process with this pid still runs (and is no zombie). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Tests whether a process has ended, giving a SIGKILL a moment to take effect (at most 100 polls). */
async function ended(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return !running(pid);
}

test('background process holding the output does not hang delivery', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'pid');
  // The shell exits 0 at once; the sleep it left keeps stdout and stderr open.
  const command = `cat >/dev/null; sleep 300 & echo $! > ${pidFile}; exit 0`;
  const run = await deliverToProgram(`|${command}`, command, message(dir, 'hi\r\n'), { timeoutMs: 2000 });
  assert.equal(run.result.status, 'sent');
  // The timeout also ended what the program left running.
  assert.equal(await ended(Number(fs.readFileSync(pidFile, 'utf8'))), true);
});

test('program that neither reads nor exits is stopped at the timeout', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'pid');
  // More than a pipe holds, so that the writes wait; sh forks the sleep.
  const command = `sleep 300 & echo $! > ${pidFile}; wait`;
  const run = await deliverToProgram(`|${command}`, command, message(dir, 'line\r\n'.repeat(100_000)), { timeoutMs: 2000 });
  assert.equal(run.result.status, 'tempfail');
  assert.equal(await ended(Number(fs.readFileSync(pidFile, 'utf8'))), true);
});

test('program gets sendmail environment only', async (t) => {
  const dir = tempDir(t);
  process.env.BREAK14_SECRET = 'hunter2';
  t.after(() => delete process.env.BREAK14_SECRET);
  const out = path.join(dir, 'env');
  const command = `env > ${out}`;
  const run = await deliverToProgram(`|${command}`, command, message(dir, 'hi\r\n'));
  assert.equal(run.result.status, 'sent');
  const env = fs.readFileSync(out, 'utf8');
  assert.doesNotMatch(env, /BREAK14_SECRET/);
  assert.match(env, /^AGENT=sendmail$/m);
});

test('program from a file of an unknown uid does not run as root', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o777);
  const config = makeConfig();
  // An :include: file owned by uid 4242, which has no account, gives the ctladdr "4242".
  const account = runAsFor('4242', config);
  assert.deepEqual(account, { uid: 4242, gid: 4242 });
  const out = path.join(dir, 'id');
  const command = `id -u > ${out}`;
  const run = await deliverToProgram(`|${command}`, command, message(dir, 'hi\r\n'), { account });
  assert.equal(run.result.status, 'sent', run.output.join('\n'));
  assert.equal(fs.readFileSync(out, 'utf8').trim(), '4242');
  // A controlling user name without an account never means root either.
  assert.notEqual(runAsFor('no-such-user-b14', config), undefined);
});
