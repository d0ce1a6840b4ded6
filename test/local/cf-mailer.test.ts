// The P=, F= and A= of Mlocal and Mprog lines in a .cf file: an Mlocal with
// the z flag runs its program as an LMTP server; Mprog's program and argv run
// |program targets with $u replaced by the command.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { deliverLocalRoute } from '../../src/delivery/local-delivery';
import { localMailer } from '../../src/delivery/local-lmtp';
import { progCommand } from '../../src/delivery/cf-mailer';
import { makeItem } from '../delivery/fixtures';
import { receivedBy, writeLmtpServer } from './lmtp-server';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-mailer-'));
  // Programs from the alias file run as uid 1 when the test runs as root (DefaultUser has no account).
  fs.chmodSync(dir, 0o777);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cfConfig(dir: string, lines: string[]): ReturnType<typeof loadConfig> {
  const file = path.join(dir, 'sendmail.cf');
  fs.writeFileSync(file, ['V10/Berkeley', `O QueueDirectory=${dir}/mqueue`, `O MailboxDirectory=${dir}/mail`, 'Dj mx.posthorn.test', ...lines, ''].join('\n'));
  return loadConfig({ file });
}

test('Mlocal with the z flag delivers through its LMTP program', async (t) => {
  const dir = tempDir(t);
  const server = writeLmtpServer(dir);
  process.env.LMTP_DIR = dir;
  t.after(() => delete process.env.LMTP_DIR);
  const config = cfConfig(dir, [`Mlocal,\t\tP=${server}, F=lsDFMAw5:/|@qPSXfmnz9, S=EnvFromSMTP/HdrFromL, R=EnvToL/HdrToL,`
    + '\n\t\tT=DNS/RFC822/SMTP,\n\t\tA=test-lmtp -l -x']);
  assert.deepEqual(localMailer(config), { kind: 'lmtp-program', path: server, argv: ['test-lmtp', '-l', '-x'] });

  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'Through Mlocal.\r\n');
  const item = makeItem('q1', [{ address: 'alice@posthorn.test', state: 'pending' }]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.deepEqual(results.map((r) => r.status), ['sent']);
  assert.match(receivedBy(dir, 'alice')[0] ?? '', /Through Mlocal\./);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'argv.log'), 'utf8').trim()).slice(1), ['-l', '-x']);
});

test('Mlocal without the z flag keeps the mbox mailer; IPC sockets', (t) => {
  const dir = tempDir(t);
  const plain = cfConfig(dir, ['Mlocal, P=/usr/lib/sm.bin/mail.local, F=lsDFMAw5:/|@qPSXfmn9, A=mail.local -d $u']);
  assert.deepEqual(localMailer(plain), { kind: 'mbox' });
  const ipc = cfConfig(dir, ['Mlocal, P=[IPC], F=lsDFMAw5:/|@qPSXmnz9, A=FILE /run/dovecot/lmtp']);
  assert.deepEqual(localMailer(ipc), { kind: 'lmtp-ipc', name: 'local', target: { kind: 'unix', path: '/run/dovecot/lmtp' } });
});

test('Mprog runs |program targets with its P= and A=', async (t) => {
  const dir = tempDir(t);
  const config = cfConfig(dir, ['Mprog, P=/usr/bin/tee, F=lsDFMoqeu9, S=EnvFromL/HdrFromL, R=EnvToL/HdrToL, D=$z:/, A=tee -a $u']);
  const out = path.join(dir, 'tee.out');
  assert.deepEqual(progCommand(config, out), { file: '/usr/bin/tee', argv: ['tee', '-a', out] });
  assert.deepEqual(progCommand(cfConfig(dir, []), 'x y'), { file: '/bin/sh', argv: ['sh', '-c', 'x y'] });

  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'Piped through tee.\r\n');
  const item = makeItem('q2', [{ address: `|${out}`, state: 'pending', parent: 'list@posthorn.test' }]);
  const { results } = await deliverLocalRoute(item, item.recipients, 'prog', { config, dataPath, firstAttempt: true });
  assert.deepEqual(results.map((r) => r.status), ['sent'], JSON.stringify(results));
  assert.match(fs.readFileSync(out, 'utf8'), /^Piped through tee\.$/m);
});
