// STARTTLS on LMTP over TCP: local mail goes through the cyrusv2 mailer
// ("TCP host port") to a real Dovecot LMTP service that offers STARTTLS, and
// a TLS_Srv: requirement on that host decides whether it is delivered.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { freePortOn, waitFor, canConnect } from '../helpers/process';
import { makeMessage, quoteRe, sendRaw } from '../helpers/e2e-setup';
import { makeTestCerts, type TestCerts } from '../tls/certs';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

/** Starts Dovecot's LMTP service on 127.0.0.1:`port` with STARTTLS, delivering into Maildirs. */
async function startDovecotTcp(t: { after(fn: () => void | Promise<void>): void }, bin: string, port: number): Promise<{ mailRoot: string; log: () => string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dovecot-tls-'));
  fs.chmodSync(dir, 0o755);
  const mailRoot = path.join(dir, 'mail');
  fs.mkdirSync(mailRoot);
  fs.chownSync(mailRoot, 65534, 65534);
  const logFile = path.join(dir, 'dovecot.log');
  const conf = path.join(dir, 'dovecot.conf');
  fs.writeFileSync(conf, [
    'protocols = lmtp',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${logFile}`,
    'ssl = yes',
    `ssl_cert = <${certs.server.cert}`,
    `ssl_key = <${certs.server.key}`,
    'listen = 127.0.0.1',
    `mail_location = maildir:${mailRoot}/%n`,
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'userdb {', '  driver = static', `  args = uid=65534 gid=65534 home=${mailRoot}/%n`, '}',
    'service lmtp {', '  inet_listener lmtp {', '    address = 127.0.0.1', `    port = ${port}`, '  }', '}',
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
  await waitFor(`dovecot to listen on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`dovecot exited with ${child.exitCode}: ${output}${log()}`);
    return canConnect('127.0.0.1', port);
  }, 20_000);
  return { mailRoot, log };
}

function maildirMessages(mailRoot: string, user: string): string[] {
  const dir = path.join(mailRoot, user, 'new');
  try {
    return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'latin1'));
  } catch {
    return [];
  }
}

test('dovecot lmtp over TCP with STARTTLS and TLS_Srv:', async (t) => {
  const bin = requirePeer(t, 'dovecot');
  if (bin === undefined) return;
  const port = await freePortOn(['127.0.0.1']);
  const dovecot = await startDovecotTcp(t, bin, port);

  for (const [requirement, user, outcome] of [
    ['VERIFY:128', 'alice', 'sent'],
    ['VERIFY+CN:other.posthorn.test', 'bob', 'deferred'],
  ] as const) {
    const accessPath = path.join(certs.dir, `access-lmtp-${user}`);
    fs.writeFileSync(accessPath, `TLS_Srv:127.0.0.1 ${requirement}\n`);
    const mc = baseMc({
      extra: [
        "define(`confREFUSE_LA', `100000')",
        "define(`confQUEUE_LA', `100000')",
        "define(`confLOG_LEVEL', `12')",
        `define(\`confCACERT', \`${certs.caCert}')`,
        `FEATURE(\`access_db', \`text ${accessPath}')`,
        "define(`confLOCAL_MAILER', `cyrusv2')",
        `define(\`CYRUSV2_MAILER_ARGS', \`TCP 127.0.0.1 ${port}')`,
        "MAILER(`cyrusv2')",
      ],
    });
    const ph = await startPosthorn({ mc });
    t.after(() => ph.stop());
    const sent = await sendRaw({
      port: ph.port,
      from: 'sender@remote.example',
      to: [`${user}@posthorn.test`],
      data: makeMessage({ from: 'sender@remote.example', to: `${user}@posthorn.test`, subject: 'lmtp tls', body: 'Over LMTP and TLS.' }),
    });
    assert.notEqual(sent.queueId, '', sent.replies.join('\n'));
    const q = quoteRe(sent.queueId);
    await ph.waitForLog(/STARTTLS=client, relay=127\.0\.0\.1, version=TLSv1\.[23], verify=OK, /, 30_000);
    if (outcome === 'sent') {
      await ph.waitForLog(new RegExp(`${q}: to=<${user}@posthorn\\.test>, .*stat=Sent`), 30_000);
      const messages = maildirMessages(dovecot.mailRoot, user);
      assert.equal(messages.length, 1, dovecot.log());
      assert.match(messages[0], /^Subject: lmtp tls$/m);
    } else {
      await ph.waitForLog(new RegExp(`${q}: to=<${user}@posthorn\\.test>, .*stat=Deferred: 403 4\\.7\\.0 CN mx\\.posthorn\\.test does not match other\\.posthorn\\.test`), 30_000);
      assert.equal(maildirMessages(dovecot.mailRoot, user).length, 0);
    }
  }
});
