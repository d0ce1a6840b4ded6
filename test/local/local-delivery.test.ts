// The local route: an LMTP program started by FEATURE(local_lmtp), |program
// and /file targets, and the per-recipient results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../../src/config/types';
import { deliverLocalRoute } from '../../src/delivery/local-delivery';
import { localMailer } from '../../src/delivery/local-lmtp';
import { parseIpcArgs } from '../../src/delivery/lmtp';
import { exitResult } from '../../src/delivery/program';
import { resolveTargetPath } from '../../src/delivery/file-mailer';
import { makeConfig, makeItem } from '../delivery/fixtures';
import { receivedBy, writeLmtpServer } from './lmtp-server';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-'));
  // Programs from the alias file run as uid 1 when the test runs as root (DefaultUser has no account).
  fs.chmodSync(dir, 0o777);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function withFeature(config: Config, name: string, args: string[]): Config {
  config.features.push({ name, args, file: 'test', line: 1 });
  return config;
}

test('local mailer defaults of local_lmtp', () => {
  const config = withFeature(makeConfig(), 'local_lmtp', []);
  assert.deepEqual(localMailer(config), { kind: 'lmtp-program', path: '/usr/libexec/mail.local', argv: ['mail.local', '-l'] });
  const custom = withFeature(makeConfig(), 'local_lmtp', ['/opt/lmtpd/bin/lmtpd', 'lmtpd -q']);
  assert.deepEqual(localMailer(custom), { kind: 'lmtp-program', path: '/opt/lmtpd/bin/lmtpd', argv: ['lmtpd', '-q'] });
  assert.deepEqual(localMailer(makeConfig()), { kind: 'mbox' });
});

test('local mailer IPC forms', () => {
  const ipc = withFeature(makeConfig(), 'local_lmtp', ['[IPC]', 'FILE /run/lmtp.sock']);
  assert.deepEqual(localMailer(ipc), { kind: 'lmtp-ipc', name: 'local', target: { kind: 'unix', path: '/run/lmtp.sock' } });
  const cyrus = makeConfig({ mcVariables: new Map([['confLOCAL_MAILER', 'cyrusv2']]) } as Partial<Config>);
  assert.deepEqual(localMailer(cyrus), { kind: 'lmtp-ipc', name: 'cyrusv2', target: { kind: 'unix', path: '/var/run/cyrus/socket/lmtp' } });
  assert.deepEqual(parseIpcArgs('TCP $h 2424', 'lmtp.example'), { kind: 'tcp', host: 'lmtp.example', port: 2424 });
  assert.deepEqual(parseIpcArgs('TCP 127.0.0.1'), { kind: 'tcp', host: '127.0.0.1', port: 24 });
});

test('local_lmtp one of three fails', async (t) => {
  const dir = tempDir(t);
  const server = writeLmtpServer(dir);
  process.env.LMTP_DIR = dir;
  process.env.LMTP_FAIL = 'carol';
  t.after(() => {
    delete process.env.LMTP_DIR;
    delete process.env.LMTP_FAIL;
  });
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'Hello LMTP.\r\n.leading dot\r\n');
  const config = withFeature(makeConfig(), 'local_lmtp', [server, 'test-lmtp -l']);
  const item = makeItem('q1', [
    { address: 'alice@posthorn.test', state: 'pending' },
    { address: 'bob@posthorn.test', state: 'pending' },
    { address: 'carol@posthorn.test', state: 'pending' },
  ]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.deepEqual(results.map((r) => [r.address, r.status, r.dsn]), [
    ['alice@posthorn.test', 'sent', '2.1.5'],
    ['bob@posthorn.test', 'sent', '2.1.5'],
    ['carol@posthorn.test', 'tempfail', '4.2.2'],
  ]);
  assert.equal(receivedBy(dir, 'alice').length, 1);
  assert.equal(receivedBy(dir, 'bob').length, 1);
  assert.equal(receivedBy(dir, 'carol').length, 0);
  assert.match(receivedBy(dir, 'alice')[0], /^\.leading dot$/m);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'argv.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).slice(1)), [['-l']]);
});

test('local_lmtp missing program defers', async (t) => {
  const dir = tempDir(t);
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'x\r\n');
  const config = withFeature(makeConfig(), 'local_lmtp', [path.join(dir, 'absent')]);
  const item = makeItem('q2', [{ address: 'alice@posthorn.test', state: 'pending' }]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.equal(results[0].status, 'tempfail');
  assert.match(results[0].text, /^Cannot exec /);
});

test('program and file targets', async (t) => {
  const dir = tempDir(t);
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'Body line\r\nFrom the start\r\n');
  const out = path.join(dir, 'program.out');
  const box = path.join(dir, 'archive');
  const config = makeConfig({ options: new Map([['DontBlameSendmail', ['safe']]]) as Config['options'] });
  const item = makeItem('q3', [
    { address: `|cat > ${out}`, state: 'pending', parent: 'list@posthorn.test' },
    { address: box, state: 'pending', parent: 'list@posthorn.test' },
    { address: '|exit 67', state: 'pending', parent: 'list@posthorn.test' },
  ]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.deepEqual(results.map((r) => [r.status, r.dsn, r.text]), [
    ['sent', '2.0.0', ''],
    ['sent', '2.0.0', ''],
    ['permfail', '5.1.1', 'User unknown'],
  ]);
  const piped = fs.readFileSync(out, 'latin1');
  assert.match(piped, /^From alice@origin\.test /);
  assert.match(piped, /\nSubject: greetings\n\nBody line\nFrom the start\n$/);
  const archived = fs.readFileSync(box, 'latin1');
  assert.match(archived, /^Return-Path: <alice@origin\.test>$/m);
  assert.match(archived, /^>From the start$/m);
});

test('file target refuses executable file', async (t) => {
  const dir = tempDir(t);
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'x\r\n');
  const target = path.join(dir, 'script');
  fs.writeFileSync(target, '#!/bin/sh\n', { mode: 0o755 });
  const item = makeItem('q4', [{ address: target, state: 'pending', parent: 'list' }]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config: makeConfig(), dataPath, firstAttempt: true });
  assert.deepEqual([results[0].status, results[0].text], ['permfail', "Can't create output: File is executable"]);
  assert.equal(fs.readFileSync(target, 'utf8'), '#!/bin/sh\n');
});

test('safe file environment confines path', () => {
  assert.equal(resolveTargetPath('/var/log/mail', '/arch'), '/arch/var/log/mail');
  assert.equal(resolveTargetPath('/arch/box', '/arch'), '/arch/box');
  assert.equal(resolveTargetPath('/arch/../etc/passwd', '/arch'), '/arch/etc/passwd');
  assert.equal(resolveTargetPath('/var/log/mail', undefined), '/var/log/mail');
});

test('program exit status mapping', () => {
  assert.deepEqual(exitResult('|x', 0, null), { address: '|x', status: 'sent', dsn: '2.0.0', text: '' });
  assert.deepEqual(exitResult('|x', 75, null), { address: '|x', status: 'tempfail', dsn: '4.0.0', text: 'Deferred' });
  assert.deepEqual(exitResult('|x', 1, null), { address: '|x', status: 'permfail', dsn: '5.3.0', text: 'unknown mailer error 1' });
  assert.equal(exitResult('|x', null, 'SIGKILL').status, 'tempfail');
});
