// The built-in mbox mailer against a hostile mail folder and hostile messages.
// The cases are a mailbox that is a symbolic link, a hard link, a FIFO or a
// folder, a mailbox another user made, a header line that starts with
// "From ", and a write that the file size limit cuts short.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { deliverToMailbox } from '../../src/delivery/mbox';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'break14-mbox-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const DATE = new Date(2006, 5, 20, 12, 14, 4);
const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;

function dataFile(name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, body, 'latin1');
  return p;
}

function message(body = 'body\r\n'): { sender: string; headers: string[]; dataPath: string; date: Date } {
  return { sender: 'a@origin.test', headers: ['Subject: x'], dataPath: dataFile(`df-${Math.random()}`, body), date: DATE };
}

test('mailbox that is a symbolic link is not followed', async () => {
  const box = path.join(dir, 'box1');
  fs.mkdirSync(box);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n');
  fs.symlinkSync(victim, path.join(box, 'alice'));
  const r = await deliverToMailbox(box, 'alice', message());
  assert.deepEqual(r, { status: 'permfail', dsn: '5.2.0', text: `${path.join(box, 'alice')}: irregular file` });
  assert.equal(fs.readFileSync(victim, 'latin1'), 'precious\n');
  assert.equal(fs.existsSync(path.join(box, 'alice.lock')), false);
});

test('mailbox that is a hard link is refused', async () => {
  const box = path.join(dir, 'box2');
  fs.mkdirSync(box);
  const victim = path.join(dir, 'victim2');
  fs.writeFileSync(victim, 'precious\n');
  fs.linkSync(victim, path.join(box, 'bob'));
  const r = await deliverToMailbox(box, 'bob', message());
  assert.deepEqual(r, { status: 'permfail', dsn: '5.2.0', text: `${path.join(box, 'bob')}: too many links` });
  assert.equal(fs.readFileSync(victim, 'latin1'), 'precious\n');
});

test('mailbox that is a FIFO fails at once', { timeout: 20_000 }, async () => {
  const box = path.join(dir, 'box3');
  fs.mkdirSync(box);
  const fifo = spawnSync('mkfifo', [path.join(box, 'carol')]);
  assert.equal(fifo.status, 0, String(fifo.stderr));
  // Before the fix the open() waited for a reader for ever.
  const r = await deliverToMailbox(box, 'carol', message());
  assert.equal(r.status, 'permfail');
  assert.equal(fs.existsSync(path.join(box, 'carol.lock')), false);
});

test('mailbox that is a folder is refused', async () => {
  const box = path.join(dir, 'box4');
  fs.mkdirSync(path.join(box, 'dave'), { recursive: true });
  const r = await deliverToMailbox(box, 'dave', message());
  assert.deepEqual(r, { status: 'permfail', dsn: '5.2.0', text: `${path.join(box, 'dave')}: irregular file` });
});

test('header line starting with From is quoted', async () => {
  const box = path.join(dir, 'box5');
  fs.mkdirSync(box);
  const msg = { ...message(), headers: ['Subject: x', 'From : forged@evil.test Tue Jun 20 12:14:04 2006', 'X-Folded: a\r\n\tb'] };
  await deliverToMailbox(box, 'erin', msg);
  const text = fs.readFileSync(path.join(box, 'erin'), 'latin1');
  // Only the envelope line may start with "From " in an mbox.
  assert.deepEqual(text.split('\n').filter((l) => l.startsWith('From ')), ['From a@origin.test Tue Jun 20 12:14:04 2006']);
  assert.match(text, /^>From : forged@evil\.test /m);
});

test('mailbox of a user that another user made is refused', { skip: !isRoot && 'needs root' }, async () => {
  const box = path.join(dir, 'box6');
  fs.mkdirSync(box);
  // "daemon" is in /etc/passwd; the planted mailbox belongs to uid 4242, readable by it.
  const planted = path.join(box, 'daemon');
  fs.writeFileSync(planted, '');
  fs.chownSync(planted, 4242, 4242);
  fs.chmodSync(planted, 0o666);
  const r = await deliverToMailbox(box, 'daemon', message());
  assert.deepEqual(r, { status: 'permfail', dsn: '5.2.0', text: `${planted}: wrong ownership (4242)` });
  assert.equal(fs.statSync(planted).size, 0);
});

test('new mailbox of a user belongs to the user', { skip: !isRoot && 'needs root' }, async () => {
  const box = path.join(dir, 'box7');
  fs.mkdirSync(box);
  const r = await deliverToMailbox(box, 'daemon', message());
  assert.deepEqual(r, { status: 'sent' });
  const st = fs.statSync(path.join(box, 'daemon'));
  const daemonUid = Number(spawnSync('id', ['-u', 'daemon']).stdout.toString().trim());
  assert.equal(st.uid, daemonUid);
  assert.equal(st.mode & 0o777, 0o600);
});

test('short write at the file size limit is not delivered', async () => {
  const box = path.join(dir, 'box8');
  fs.mkdirSync(box);
  // One message without a final newline: its last write is "\n\n".
  const script = [
    `const { deliverToMailbox } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'delivery', 'mbox.js'))});`,
    `const fs = require('fs');`,
    `const [box, prefill, df] = process.argv.slice(1);`,
    `if (Number(prefill) > 0) fs.writeFileSync(box + '/frank', Buffer.alloc(Number(prefill), 'x'));`,
    `deliverToMailbox(box, 'frank', { sender: 's@x.test', headers: ['Subject: s'], dataPath: df, date: new Date(0) })`,
    `  .then((r) => process.stdout.write(JSON.stringify(r)));`,
  ].join('\n');
  const df = dataFile('df-short', 'no final newline');
  // Its length, from a delivery without a limit.
  const free = spawnSync(process.execPath, ['-e', script, box, '0', df], { encoding: 'utf8' });
  assert.equal(free.stdout, '{"status":"sent"}', free.stderr);
  const length = fs.statSync(path.join(box, 'frank')).size;
  fs.rmSync(path.join(box, 'frank'));
  // An 8 KiB file size limit (prlimit, in bytes); the mailbox is filled so that all but the last byte fits.
  const limit = 8 * 1024;
  const run = spawnSync('prlimit', [`--fsize=${limit}`, process.execPath, '-e', script, box, String(limit - length + 1), df], { encoding: 'utf8' });
  const r = JSON.parse(run.stdout || '{}') as { status?: string };
  assert.equal(r.status, 'tempfail', `${run.stdout}${run.stderr}`);
  // Truncated back: no half message is left.
  assert.equal(fs.statSync(path.join(box, 'frank')).size, limit - length + 1);
});
