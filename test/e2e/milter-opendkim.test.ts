// opendkim from Debian as real milters: one signs the message, a second in
// verify mode (after it, so it sees the signature) adds Authentication-Results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { baseMc, startPosthorn } from '../helpers/posthorn';
import { rawSmtp } from '../helpers/clients';
import { makeMessage } from '../helpers/e2e-setup';
import { requirePeer } from '../helpers/peers';
import { runCommand, waitFor } from '../helpers/process';

/** Starts `opendkim -f -x CONF` and waits for its unix socket. */
async function startOpendkim(bin: string, dir: string, name: string, settings: string[]): Promise<{ socket: string; proc: ChildProcess }> {
  const socket = path.join(dir, `${name}.sock`);
  const conf = path.join(dir, `${name}.conf`);
  fs.writeFileSync(conf, [`Socket local:${socket}`, 'Background no', 'Syslog no', 'RequireSafeKeys no',
    `PidFile ${path.join(dir, name + '.pid')}`, ...settings].join('\n') + '\n');
  const proc = spawn(bin, ['-f', '-x', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(`opendkim ${name} socket`, () => {
    if (proc.exitCode !== null) throw new Error(`opendkim ${name} exited: ${output}`);
    return fs.existsSync(socket);
  }, 10_000);
  return { socket, proc };
}

test('opendkim signs and verifies through posthorn', async (t) => {
  const opendkim = requirePeer(t, 'opendkim');
  const genkey = requirePeer(t, 'opendkim-genkey');
  if (opendkim === undefined || genkey === undefined) return;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-dkim-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const keys = await runCommand(genkey, ['-D', dir, '-d', 'client.example', '-s', 'test']);
  assert.equal(keys.code, 0, keys.stderr);
  const record = fs.readFileSync(path.join(dir, 'test.txt'), 'utf8');
  const txt = [...record.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  fs.writeFileSync(path.join(dir, 'public-keys'), `test._domainkey.client.example ${txt}\n`);

  const signer = await startOpendkim(opendkim, dir, 'sign', [
    'Mode s', 'Domain client.example', 'Selector test', `KeyFile ${path.join(dir, 'test.private')}`,
  ]);
  t.after(() => signer.proc.kill('SIGTERM'));
  const verifier = await startOpendkim(opendkim, dir, 'verify', [
    'Mode v', `TestPublicKeys ${path.join(dir, 'public-keys')}`, 'AuthservID mx.posthorn.test',
  ]);
  t.after(() => verifier.proc.kill('SIGTERM'));

  const ph = await startPosthorn({
    mc: baseMc({
      extra: [
        `INPUT_MAIL_FILTER(\`sign', \`S=local:${signer.socket}, F=T')`,
        `INPUT_MAIL_FILTER(\`verify', \`S=unix:${verifier.socket}, F=T')`,
      ],
    }),
  });
  t.after(() => ph.stop());

  const message = makeMessage({ from: 'carol@client.example', to: 'alice@posthorn.test', subject: 'signed', body: 'Signed body.' });
  const replies = await rawSmtp(ph.port, [
    'EHLO client.example', 'MAIL FROM:<carol@client.example>', 'RCPT TO:<alice@posthorn.test>', 'DATA', message + '.\r\n', 'QUIT',
  ]);
  assert.match(replies[5], /^250 2\.0\.0 /);
  const mbox = await ph.waitForMailbox('alice', 'Signed body.');
  assert.match(mbox, /^DKIM-Signature: v=1; a=rsa-sha256; c=simple\/simple; d=client\.example;/m);
  assert.match(mbox, /s=test;/);
  assert.match(mbox, /^Authentication-Results: mx\.posthorn\.test;[\s\S]*?dkim=pass/m);
});
