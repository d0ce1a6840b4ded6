import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { asctime, deliverToMailbox, mailboxName, MboxBodyWriter } from '../../src/delivery/mbox';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-mbox-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let count = 0;
function dataFile(body: string): string {
  const p = path.join(dir, `df-${count++}`);
  fs.writeFileSync(p, body, 'latin1');
  return p;
}

const DATE = new Date(2006, 5, 20, 12, 14, 4);

test('mbox layout with From quoting and LF line ends', async () => {
  const body = 'Hello\r\nFrom the start\r\n>From kept\r\n From indented\r\nFrom\r\n';
  const r = await deliverToMailbox(dir, 'Bob+lists@posthorn.test', {
    sender: 'alice@origin.test',
    headers: ['Subject: hi', 'Received: from a\r\n\tby b'],
    dataPath: dataFile(body),
    date: DATE,
  });
  assert.deepEqual(r, { status: 'sent' });
  const text = fs.readFileSync(path.join(dir, 'bob'), 'latin1');
  assert.equal(
    text,
    'From alice@origin.test Tue Jun 20 12:14:04 2006\n' +
      'Return-Path: <alice@origin.test>\n' +
      'Subject: hi\n' +
      'Received: from a\n\tby b\n' +
      '\n' +
      'Hello\n' +
      '>From the start\n' +
      '>From kept\n' +
      ' From indented\n' +
      'From\n' +
      '\n',
  );
  assert.equal(fs.existsSync(path.join(dir, 'bob.lock')), false);
});

test('second message appends; null sender is MAILER-DAEMON', async () => {
  const msg = { sender: '', headers: ['Subject: bounce'], dataPath: dataFile('x\r\n'), date: DATE };
  await deliverToMailbox(dir, 'carol', msg);
  await deliverToMailbox(dir, 'carol', msg);
  const text = fs.readFileSync(path.join(dir, 'carol'), 'latin1');
  const one = 'From MAILER-DAEMON Tue Jun 20 12:14:04 2006\nReturn-Path: <>\nSubject: bounce\n\nx\n\n';
  assert.equal(text, one + one);
});

test('body without a final line end', async () => {
  await deliverToMailbox(dir, 'dave', { sender: 'a@b.test', headers: [], dataPath: dataFile('no newline'), date: DATE });
  const text = fs.readFileSync(path.join(dir, 'dave'), 'latin1');
  assert.ok(text.endsWith('\n\nno newline\n\n'));
});

test('invalid user names are unknown', async () => {
  for (const name of ['../etc/passwd', '.hidden', 'a/b', '', 'x..y']) {
    const r = await deliverToMailbox(dir, `${name}@posthorn.test`, {
      sender: '',
      headers: [],
      dataPath: dataFile(''),
      date: DATE,
    });
    assert.deepEqual(r, { status: 'permfail', dsn: '5.1.1', text: 'User unknown' }, name);
  }
  assert.equal(mailboxName('Root@localhost'), 'root');
  assert.equal(mailboxName('user+tag'), 'user');
});

test('a held lock defers delivery', async () => {
  fs.writeFileSync(path.join(dir, 'erin.lock'), '1\n');
  const r = await deliverToMailbox(
    dir,
    'erin',
    { sender: '', headers: [], dataPath: dataFile('x\r\n'), date: DATE },
    { lockWaitMs: 100 },
  );
  assert.equal(r.status, 'tempfail');
  assert.equal(fs.existsSync(path.join(dir, 'erin')), false);
  fs.unlinkSync(path.join(dir, 'erin.lock'));
});

test('a stale lock is removed', async () => {
  const lock = path.join(dir, 'fred.lock');
  fs.writeFileSync(lock, '1\n');
  const old = new Date(Date.now() - 10 * 60 * 1000);
  fs.utimesSync(lock, old, old);
  const r = await deliverToMailbox(dir, 'fred', { sender: '', headers: [], dataPath: dataFile('x\r\n'), date: DATE });
  assert.deepEqual(r, { status: 'sent' });
  assert.equal(fs.existsSync(lock), false);
});

test('failed append leaves the mailbox as it was', async () => {
  const msg = { sender: '', headers: ['Subject: one'], dataPath: dataFile('x\r\n'), date: DATE };
  await deliverToMailbox(dir, 'gina', msg);
  const before = fs.readFileSync(path.join(dir, 'gina'));
  const missing = { ...msg, dataPath: path.join(dir, 'no-such-df') };
  const r = await deliverToMailbox(dir, 'gina', missing);
  assert.equal(r.status, 'tempfail');
  assert.ok(fs.readFileSync(path.join(dir, 'gina')).equals(before));
});

test('body writer across chunk boundaries', () => {
  const w = new MboxBodyWriter();
  const pieces = ['a\r', '\nFr', 'om x\r\n', 'Fro', 'g\r\nFrom', ' y\r\n'];
  const out = Buffer.concat([...pieces.map((p) => w.push(Buffer.from(p))), w.finish()]).toString();
  assert.equal(out, 'a\n>From x\nFrog\n>From y\n\n');
});

test('asctime pads the day with a space', () => {
  assert.equal(asctime(new Date(2024, 0, 5, 3, 4, 5)), 'Fri Jan  5 03:04:05 2024');
});
