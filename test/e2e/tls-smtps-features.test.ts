// smtps listeners (M=s), Srv_Features: access map entries, CACertPath read by
// OpenSSL hash names, CipherList and DHParameters, against openssl s_client,
// swaks, Python's smtplib and a scripted Node client.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Posthorn } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { runCommand, runStaged } from '../helpers/process';
import { swaks } from '../helpers/clients';
import { startTlsPosthorn, startTlsSession, type TlsPosthornOptions } from '../helpers/tls-setup';
import { makeTestCerts, type TestCerts } from '../tls/certs';
import { TestSmtpClient } from '../tls/smtp-client';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

/** Starts posthorn with STARTTLS and the test CA. The caller stops it. */
function tlsPosthorn(opts: TlsPosthornOptions = {}): Promise<Posthorn> {
  return startTlsPosthorn(certs, opts);
}

const SMTPS_DAEMON = "DAEMON_OPTIONS(`Port=@PORT@, Addr=@ADDR@, Name=SMTPS, M=s')";

/** Runs openssl s_client with `input` on stdin; the input is written at once, so the client talks before any greeting. */
async function sClient(openssl: string, args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand(openssl, ['s_client', '-quiet', '-ign_eof', ...args], { input, timeoutMs: 30_000 });
}

test('smtps: openssl s_client gets the 220 after the handshake, without greet_pause', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const ph = await tlsPosthorn({ daemon: SMTPS_DAEMON, extra: ["FEATURE(`greet_pause', `3000')"] });
  t.after(() => ph.stop());

  // EHLO is written before the greeting arrives: a greet_pause would answer 554.
  // EHLO must end a pipelined group, so the rest waits for its reply.
  const result = await runStaged(openssl, ['s_client', '-quiet', '-ign_eof', '-connect', `127.0.0.1:${ph.port}`,
    '-cert', certs.client.cert, '-key', certs.client.key, '-CAfile', certs.caCert], [
    ['EHLO client.posthorn.test\r\n', /^250 HELP\r?$/m],
    ['STARTTLS\r\n', /^454 /m],
    ['MAIL FROM:<alice@posthorn.test>\r\nRCPT TO:<bob@posthorn.test>\r\nDATA\r\nSubject: smtps\r\n\r\nsent over smtps\r\n.\r\nQUIT\r\n', /^221 /m],
  ]);
  assert.match(result.stdout, /^220 mx\.posthorn\.test ESMTP /m, result.stdout + result.stderr);
  assert.doesNotMatch(result.stdout, /^554 /m);
  assert.doesNotMatch(result.stdout, /STARTTLS\r?$/m);
  assert.match(result.stdout, /^454 4\.3\.3 TLS not available after start/m);
  assert.match(result.stdout, /^250 2\.0\.0 \S+ Message accepted for delivery/m);
  assert.match(result.stderr, /verify return:1/);

  await ph.waitForLog(/STARTTLS=server, relay=localhost \[127\.0\.0\.1\], version=TLSv1\.3, verify=OK, cipher=\S+, bits=\d+\/\d+/);
  const mbox = await ph.waitForMailbox('bob', 'sent over smtps');
  assert.match(mbox, /with ESMTPS id \S+\r?\n\t\(version=TLSv1\.3 cipher=\S+ bits=\d+ verify=OK\)/);
});

const SMTPLIB_SSL = `
import json, smtplib, ssl, sys
args = json.load(sys.stdin)
ctx = ssl.create_default_context(cafile=args['ca'])
ctx.check_hostname = False
if args.get('cert'):
    ctx.load_cert_chain(args['cert'], args['key'])
with smtplib.SMTP_SSL('127.0.0.1', args['port'], context=ctx, timeout=20) as s:
    code, _ = s.ehlo('client.posthorn.test')
    refused = s.sendmail('alice@posthorn.test', ['bob@posthorn.test'], 'Subject: smtplib\\r\\n\\r\\n' + args['body'] + '\\r\\n')
    print(json.dumps({'ehlo': code, 'starttls': s.has_extn('starttls'), 'refused': list(refused)}))
`;

test('smtps: Python smtplib.SMTP_SSL with a client certificate', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const ph = await tlsPosthorn({ daemon: SMTPS_DAEMON });
  t.after(() => ph.stop());
  const script = path.join(certs.dir, 'smtps.py');
  fs.writeFileSync(script, SMTPLIB_SSL);

  const input = JSON.stringify({ port: ph.port, ca: certs.caCert, cert: certs.client.cert, key: certs.client.key, body: 'python over smtps' });
  const run = await runCommand(python, [script], { input, timeoutMs: 30_000 });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { ehlo: 250, starttls: false, refused: [] });
  const mbox = await ph.waitForMailbox('bob', 'python over smtps');
  assert.match(mbox, /verify=OK\)/);
});

test('smtps: a clear-text client gets no greeting and the failure is logged', async (t) => {
  const ph = await tlsPosthorn({ daemon: SMTPS_DAEMON });
  t.after(() => ph.stop());
  const received = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: ph.port }, () => socket.write('EHLO client.posthorn.test\r\n'));
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the server did not close the connection'));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  assert.doesNotMatch(received, /220/);
  await ph.waitForLog(/STARTTLS=server, error: accept failed=-1, SSL_error=1, timedout=0, errno=-?\d+/);
});

test('Srv_Features: S, P, D, v and temp per client address', async (t) => {
  const ph = await tlsPosthorn({
    extra: ["define(`confTLS_SRV_OPTIONS', `V')"],
    access: [
      'Srv_Features:127.0.0.2 S',
      'Srv_Features:127.0.0.3 P D',
      'Srv_Features:127.0.0.4 v',
      'Srv_Features:127.0.0.5 temp',
      '',
    ].join('\n'),
  });
  t.after(() => ph.stop());

  const noTls = await TestSmtpClient.connect(ph.port, '127.0.0.2');
  await noTls.reply();
  const ehloNoTls = await noTls.command('EHLO client.posthorn.test');
  assert.doesNotMatch(ehloNoTls, /STARTTLS/);
  assert.match(ehloNoTls, /250-PIPELINING/);
  assert.equal(await noTls.command('STARTTLS'), '503 5.5.0 TLS not available');
  noTls.close();

  const lean = await TestSmtpClient.connect(ph.port, '127.0.0.3');
  await lean.reply();
  const ehloLean = await lean.command('EHLO client.posthorn.test');
  assert.doesNotMatch(ehloLean, /PIPELINING|DSN/);
  assert.match(ehloLean, /250-STARTTLS/);
  lean.close();

  // TLSSrvOptions V: no certificate is requested, except from 127.0.0.4 (v).
  for (const [address, verify] of [['127.0.0.4', 'OK'], ['127.0.0.1', 'NOT']] as const) {
    const c = await startTlsSession(ph.port, certs.client, address);
    assert.match(await c.command('EHLO client.posthorn.test'), /^250-/);
    c.close();
    await ph.waitForLog(new RegExp(`STARTTLS=server, relay=(?:\\S+ )?\\[${address.replace(/\./g, '\\.')}\\], version=TLSv1\\.3, verify=${verify}, `));
  }

  const temp = await TestSmtpClient.connect(ph.port, '127.0.0.5');
  assert.match(await temp.reply(), /^220 /);
  assert.match(await temp.command('EHLO client.posthorn.test'), /^250/);
  assert.equal(await temp.command('MAIL FROM:<alice@posthorn.test>'), '450 4.3.0 Please try again later.');
  assert.equal(await temp.command('STARTTLS'), '450 4.3.0 Please try again later.');
  temp.close();
  await ph.waitForLog(/ERROR: srv_features=tempfail, relay=(?:\S+ )?\[127\.0\.0\.5\], access temporarily disabled/);
});

test('Srv_Features: S hides STARTTLS from swaks', async (t) => {
  if (!requirePeer(t, 'swaks')) return;
  const ph = await tlsPosthorn({ access: 'Srv_Features:127.0.0.6 S\n' });
  t.after(() => ph.stop());
  const common = ['--server', `127.0.0.1:${ph.port}`, '--tls', '--from', 'alice@posthorn.test', '--to', 'bob@posthorn.test',
    '--helo', 'client.posthorn.test'];
  const refused = await swaks([...common, '--local-interface', '127.0.0.6', '--body', 'never sent']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stdout + refused.stderr, /did not advertise STARTTLS/);
  const ok = await swaks([...common, '--local-interface', '127.0.0.7', '--body', 'swaks with STARTTLS']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  await ph.waitForMailbox('bob', 'swaks with STARTTLS');
});

test('CACertPath trusts only certificates under their hash names', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const dir = path.join(certs.dir, 'cacerts');
  fs.mkdirSync(dir);
  fs.copyFileSync(certs.caCert, path.join(dir, 'posthorn-ca.pem'));
  const ph = await tlsPosthorn({ ca: [`define(\`confCACERT_PATH', \`${dir}')`] });
  t.after(() => ph.stop());

  const handshake = async (): Promise<void> => {
    const c = await startTlsSession(ph.port, certs.client);
    await c.command('EHLO client.posthorn.test');
    c.close();
  };
  await handshake();
  await ph.waitForLog(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.3, verify=FAIL, /);

  const rehash = await runCommand(openssl, ['rehash', dir], { timeoutMs: 30_000 });
  assert.equal(rehash.code, 0, rehash.stderr);
  assert.ok(fs.readdirSync(dir).some((name) => /^[0-9a-f]{8}\.0$/.test(name)), fs.readdirSync(dir).join(' '));
  await handshake();
  await ph.waitForLog(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.3, verify=OK, /);
});

test('CipherList and DHParameters', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const dhe = 'DHE-RSA-AES128-GCM-SHA256';
  const withDh = await tlsPosthorn({ extra: [`define(\`confCIPHER_LIST', \`${dhe}')`, "define(`confDH_PARAMETERS', `2')"] });
  t.after(() => withDh.stop());
  const noDh = await tlsPosthorn({ extra: [`define(\`confCIPHER_LIST', \`${dhe}')`, "define(`confDH_PARAMETERS', `none')"] });
  t.after(() => noDh.stop());
  const bogus = await tlsPosthorn({ extra: ["define(`confCIPHER_LIST', `NO-SUCH-CIPHER')", "define(`confDH_PARAMETERS', `x')"] });
  t.after(() => bogus.stop());

  const input = 'EHLO client.posthorn.test\r\nQUIT\r\n';
  const args = (port: number): string[] => ['-starttls', 'smtp', '-tls1_2', '-cipher', `${dhe}:ECDHE-RSA-AES128-GCM-SHA256`,
    '-connect', `127.0.0.1:${port}`];

  const ok = await sClient(openssl, args(withDh.port), input);
  assert.match(ok.stdout, /^221 /m, ok.stdout + ok.stderr);
  await withDh.waitForLog(new RegExp(`STARTTLS=server, relay=\\S+ \\S+, version=TLSv1\\.2, verify=NO, cipher=${dhe}, bits=128/128`));

  // The only permitted suite needs DH parameters, and "none" turns them off.
  const failed = await sClient(openssl, args(noDh.port), input);
  assert.doesNotMatch(failed.stdout, /^221 /m);
  await noDh.waitForLog(/STARTTLS=server, error: accept failed=-1, SSL_error=1, timedout=0, /);

  // Unusable values are logged and ignored; STARTTLS still works with the defaults.
  const fallback = await sClient(openssl, args(bogus.port), input);
  assert.match(fallback.stdout, /^221 /m, fallback.stdout + fallback.stderr);
  assert.match(bogus.logs(), /STARTTLS=server, error: SSL_CTX_set_cipher_list\(NO-SUCH-CIPHER\) failed, list ignored/);
  assert.match(bogus.logs(), /STARTTLS=server, error: illegal value 'x' for DHParameters/);
  await bogus.waitForLog(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.2, verify=NO, cipher=ECDHE-RSA-AES128-GCM-SHA256, /);
});

test('TLSSrvOptions C: STARTTLS without a server certificate, anonymous DH only', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const ph = await tlsPosthorn({ noCert: true, extra: ["define(`confTLS_SRV_OPTIONS', `C')", "define(`confCIPHER_LIST', `aNULL:@SECLEVEL=0')"] });
  t.after(() => ph.stop());
  const input = 'EHLO client.posthorn.test\r\nQUIT\r\n';
  const anonymous = await sClient(openssl, ['-starttls', 'smtp', '-tls1_2', '-cipher', 'aNULL:@SECLEVEL=0', '-connect', `127.0.0.1:${ph.port}`], input);
  assert.match(anonymous.stdout, /^221 /m, anonymous.stdout + anonymous.stderr);
  await ph.waitForLog(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.2, verify=NO, cipher=ADH-AES256-GCM-SHA384, bits=256\/256/);

  // A client that insists on an authenticated server cannot complete the handshake.
  const strict = await sClient(openssl, ['-starttls', 'smtp', '-connect', `127.0.0.1:${ph.port}`], input);
  assert.doesNotMatch(strict.stdout, /^221 /m);
});
