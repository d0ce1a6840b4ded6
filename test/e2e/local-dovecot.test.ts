// LMTP to a real Dovecot over a unix socket: local mail goes through the
// cyrusv2 mailer (confLOCAL_MAILER) to Dovecot's LMTP service, after alias
// expansion, and lands in the Maildir that Dovecot writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { waitFor } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';

const NO_LOAD_LIMITS = ["define(`confREFUSE_LA', `100000')", "define(`confQUEUE_LA', `100000')"];

/** Files in the "new" folder of a user's Maildir. */
function maildirMessages(mailRoot: string, user: string): string[] {
  const dir = path.join(mailRoot, user, 'new');
  try {
    return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'latin1'));
  } catch {
    return [];
  }
}

async function startDovecot(t: { after(fn: () => void | Promise<void>): void }, bin: string): Promise<{ socket: string; mailRoot: string; log: () => string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dovecot-'));
  fs.chmodSync(dir, 0o755);
  const mailRoot = path.join(dir, 'mail');
  fs.mkdirSync(mailRoot);
  fs.chownSync(mailRoot, 65534, 65534);
  const socket = path.join(dir, 'lmtp.sock');
  const logFile = path.join(dir, 'dovecot.log');
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(conf, [
    'protocols = lmtp',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${logFile}`,
    'ssl = no',
    'listen = 127.0.0.1',
    `mail_location = maildir:${mailRoot}/%n`,
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'userdb {', '  driver = static', `  args = uid=65534 gid=65534 home=${mailRoot}/%n`, '}',
    'service lmtp {', `  unix_listener ${socket} {`, '    mode = 0666', '  }', '}',
    '',
  ].join('\n'));
  const child = spawn(bin, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const log = (): string => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor(`dovecot to create ${socket}`, async () => {
    if (child.exitCode !== null) throw new Error(`dovecot exited with ${child.exitCode}: ${output}${log()}`);
    return fs.existsSync(socket);
  }, 20_000);
  return { socket, mailRoot, log };
}

test('dovecot lmtp via cyrusv2 socket', async (t) => {
  const bin = requirePeer(t, 'dovecot');
  if (bin === undefined) return;
  const dovecot = await startDovecot(t, bin);

  const mc = baseMc({
    extra: [
      ...NO_LOAD_LIMITS,
      "define(`ALIAS_FILE', `@DIR@/aliases')",
      "define(`confLOCAL_MAILER', `cyrusv2')",
      "define(`CYRUSV2_MAILER_ARGS', `FILE @SOCKET@')",
      "MAILER(`cyrusv2')",
    ],
  });
  const ph = await startPosthorn({ mc, vars: { SOCKET: dovecot.socket } });
  t.after(() => ph.stop());
  fs.writeFileSync(path.join(ph.dir, 'aliases'), 'team: alice, bob\n');

  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['team@posthorn.test', 'carol@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'team@posthorn.test', subject: 'dovecot lmtp', body: 'Into the Maildir.\n.dot line' }),
  });
  assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<carol@posthorn\\.test>, .*stat=Sent`), 30_000);
  await ph.waitForLog(new RegExp(`${q}: to=<bob>, .*mailer=local, .*stat=Sent`), 30_000);
  assert.match(ph.logs(), new RegExp(`${q}: to=<alice>, .*stat=Sent \\(<alice> .*Saved\\)`));

  for (const user of ['alice', 'bob', 'carol']) {
    const messages = maildirMessages(dovecot.mailRoot, user);
    assert.equal(messages.length, 1, `${user}: ${messages.length} messages\n${dovecot.log()}`);
    assert.match(messages[0], /^Return-Path: <sender@remote\.example>$/m);
    assert.match(messages[0], /^Subject: dovecot lmtp$/m);
    assert.match(messages[0], /^\.dot line$/m);
  }
  // The item is removed just after the last "to=" line is logged.
  await waitFor('the queue item to be removed', async () => ph.queueFiles().every((f) => !f.endsWith(sent.queueId)), 10_000);
});

test('dovecot socket down defers', async (t) => {
  const mc = baseMc({
    extra: [...NO_LOAD_LIMITS, "define(`confLOCAL_MAILER', `cyrusv2')", "define(`CYRUSV2_MAILER_ARGS', `FILE @DIR@/absent.sock')", "MAILER(`cyrusv2')"],
  });
  const ph = await startPosthorn({ mc });
  t.after(() => ph.stop());
  const sent = await sendRaw({
    port: ph.port,
    from: 'sender@remote.example',
    to: ['alice@posthorn.test'],
    data: makeMessage({ from: 'sender@remote.example', to: 'alice@posthorn.test', subject: 'no socket', body: 'Waits.' }),
  });
  const q = quoteRe(sent.queueId);
  await ph.waitForLog(new RegExp(`${q}: to=<alice@posthorn\\.test>, .*stat=Deferred: `), 30_000);
  assert.ok(ph.queueFiles().includes(`qf${sent.queueId}`));
});
