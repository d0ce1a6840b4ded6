// STARTTLS on the server side against real clients: openssl s_client, swaks,
// Python's smtplib, and a scripted Node client for the hostile cases. Covers
// every reply of the verb, each ${verify} value a server can produce, the
// Received: and log lines, TLS_Clt: requirements and relaying by certificate.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
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

/** Starts posthorn with STARTTLS, the test CA and its CRL. The caller stops it. */
function tlsPosthorn(opts: Omit<TlsPosthornOptions, 'crl'> = {}): Promise<Posthorn> {
  return startTlsPosthorn(certs, { ...opts, crl: true });
}

const MESSAGE = 'Subject: tls test\r\n\r\nsent over TLS\r\n.\r\n';

test('openssl s_client with client certificate', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());

  // EHLO must end a pipelined group, so the rest is written after its reply.
  const result = await runStaged(openssl, [
    's_client', '-quiet', '-ign_eof', '-starttls', 'smtp', '-connect', `127.0.0.1:${ph.port}`,
    '-cert', certs.client.cert, '-key', certs.client.key, '-CAfile', certs.caCert,
  ], [
    ['EHLO client.posthorn.test\r\n', /^250 HELP\r?$/m],
    ['MAIL FROM:<alice@posthorn.test>\r\nRCPT TO:<bob@posthorn.test>\r\nDATA\r\n' + MESSAGE + 'QUIT\r\n', /^221 /m],
  ]);
  assert.match(result.stdout, /^250 2\.0\.0 \S+ Message accepted for delivery/m, result.stdout + result.stderr);
  assert.match(result.stderr, /verify return:1/);

  await ph.waitForLog(/STARTTLS=server, relay=localhost \[127\.0\.0\.1\], version=TLSv1\.3, verify=OK, cipher=TLS_AES_256_GCM_SHA384, bits=256\/256/);
  assert.match(ph.logs(), /STARTTLS=server, cert-subject=\/C=DE\/O=Posthorn\+20Test\/CN=client\.posthorn\.test, cert-issuer=\/C=DE\/O=Posthorn\+20Test\/CN=Posthorn\+20Test\+20CA, verifymsg=ok/);
  assert.match(ph.logs(), /from=<alice@posthorn\.test>, .*proto=ESMTPS/);
  const mbox = await ph.waitForMailbox('bob', 'sent over TLS');
  assert.match(mbox, /with ESMTPS id \S+\r?\n\t\(version=TLSv1\.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=OK\)\r?\n\tfor <bob@posthorn\.test>;/);
});

test('swaks --tls without certificate', async (t) => {
  if (!requirePeer(t, 'swaks')) return;
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());

  const result = await swaks(['--server', `127.0.0.1:${ph.port}`, '--tls', '--from', 'alice@posthorn.test',
    '--to', 'bob@posthorn.test', '--helo', 'client.posthorn.test', '--body', 'swaks over TLS']);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /<- {2}220 2\.0\.0 Ready to start TLS/);
  assert.match(result.stdout, /250-STARTTLS/);
  await ph.waitForMailbox('bob', 'swaks over TLS');
  assert.match(ph.mailbox('bob'), /\(version=TLSv1\.3 cipher=\S+ bits=\d+ verify=NO\)/);
  assert.match(ph.logs(), /STARTTLS=server, relay=localhost \[127\.0\.0\.1\], version=TLSv1\.3, verify=NO, /);
});

const SMTPLIB_TLS = `
import json, smtplib, ssl, sys
opts = json.load(sys.stdin)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if opts.get("cert"):
    ctx.load_cert_chain(opts["cert"], opts["key"])
s = smtplib.SMTP("127.0.0.1", opts["port"], timeout=30)
s.ehlo("python.posthorn.test")
code, text = s.starttls(context=ctx)
s.ehlo("python.posthorn.test")
refused = s.sendmail("alice@posthorn.test", ["bob@posthorn.test"], "Subject: py\\r\\n\\r\\n" + opts["body"] + "\\r\\n")
s.quit()
print(json.dumps({"starttls": [code, text.decode()], "refused": list(refused)}))
`;

test('smtplib starttls with and without certificate', async (t) => {
  const python = requirePeer(t, 'python3');
  if (!python) return;
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());
  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-py-')), 'tls.py');
  fs.writeFileSync(script, SMTPLIB_TLS);
  t.after(() => fs.rmSync(path.dirname(script), { recursive: true, force: true }));

  for (const [body, cert] of [['python with cert', certs.client], ['python without cert', undefined]] as const) {
    const input = JSON.stringify({ port: ph.port, body, cert: cert?.cert, key: cert?.key });
    const run = await runCommand(python, [script], { input, timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { starttls: [number, string]; refused: string[] };
    assert.deepEqual(out.starttls, [220, '2.0.0 Ready to start TLS']);
    assert.deepEqual(out.refused, []);
  }
  const mbox = await ph.waitForMailbox('bob', 'python without cert');
  assert.match(mbox, /verify=OK\)[\s\S]*python with cert/);
  assert.match(mbox, /verify=NO\)[\s\S]*python without cert/);
});

test('verify FAIL for expired, revoked, unknown CA', async () => {
  const ph = await tlsPosthorn();
  after(() => ph.stop());
  const cases: Array<[keyof TestCerts, string]> = [
    ['expired', 'CERT_HAS_EXPIRED'],
    ['revoked', 'CERT_REVOKED'],
    ['stranger', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  ];
  for (const [name, message] of cases) {
    const c = await startTlsSession(ph.port, certs[name] as { cert: string; key: string });
    assert.match(await c.command('EHLO client.posthorn.test'), /^250-mx\.posthorn\.test/);
    c.close();
    await ph.waitForLog(new RegExp(`cert-subject=/C=DE/O=\\S+/CN=${name}\\.posthorn\\.test, cert-issuer=\\S+, verifymsg=${message}`));
  }
  assert.equal(ph.logs().match(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.3, verify=FAIL, /g)?.length, 3);
});

test('TLSSrvOptions V gives verify NOT', async (t) => {
  const ph = await tlsPosthorn({ extra: ["define(`confTLS_SRV_OPTIONS', `V')"] });
  t.after(() => ph.stop());
  const c = await startTlsSession(ph.port, certs.client);
  await c.command('EHLO client.posthorn.test');
  c.close();
  await ph.waitForLog(/STARTTLS=server, relay=\S+ \S+, version=TLSv1\.3, verify=NOT, /);
});

test('STARTTLS replies and state reset', async (t) => {
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());
  const c = await TestSmtpClient.connect(ph.port);
  await c.reply();
  assert.equal(await c.command('STARTTLS now'), '501 5.5.2 Syntax error (no parameters allowed)');
  await c.command('EHLO client.posthorn.test');
  assert.match(await c.command('MAIL FROM:<alice@posthorn.test>'), /^250 /);
  assert.equal(await c.command('STARTTLS'), '503 5.5.0 TLS not permitted during a mail transaction');
  assert.match(await c.command('RSET'), /^250 /);
  assert.equal(await c.command('STARTTLS'), '220 2.0.0 Ready to start TLS');
  await c.startTls();

  assert.equal(await c.command('MAIL FROM:<alice@posthorn.test>'), '503 5.0.0 Polite people say HELO first');
  const ehlo = await c.command('EHLO client.posthorn.test');
  assert.doesNotMatch(ehlo, /STARTTLS/);
  assert.equal(await c.command('STARTTLS'), '454 4.3.3 TLS not available after start');
  assert.match(await c.command('MAIL FROM:<alice@posthorn.test>'), /^250 2\.1\.0 /);
  c.close();
});

test('STARTTLS not configured or M=S', async (t) => {
  const plain = await startPosthorn({ mc: baseMc() });
  t.after(() => plain.stop());
  const noTls = await tlsPosthorn({ daemon: "DAEMON_OPTIONS(`Port=@PORT@, Addr=@ADDR@, Name=MTA, M=S')" });
  t.after(() => noTls.stop());
  for (const ph of [plain, noTls]) {
    const c = await TestSmtpClient.connect(ph.port);
    await c.reply();
    assert.doesNotMatch(await c.command('EHLO client.posthorn.test'), /STARTTLS/);
    assert.equal(await c.command('STARTTLS'), '503 5.5.0 TLS not available');
    c.close();
  }
});

test('commands pipelined after STARTTLS are discarded', async (t) => {
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());
  const c = await TestSmtpClient.connect(ph.port);
  await c.reply();
  await c.command('EHLO client.posthorn.test');
  c.write('STARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<evil@posthorn.test>\r\nRCPT TO:<bob@posthorn.test>\r\n');
  assert.equal(await c.reply(), '220 2.0.0 Ready to start TLS');
  await c.startTls();
  // Were the injected commands run, RCPT would now be accepted.
  assert.equal(await c.command('RCPT TO:<bob@posthorn.test>'), '503 5.0.0 Need MAIL before RCPT');
  await c.command('EHLO client.posthorn.test');
  assert.equal(await c.command('RCPT TO:<bob@posthorn.test>'), '503 5.0.0 Need MAIL before RCPT');
  c.close();
  await ph.waitForLog(/STARTTLS=server, relay=localhost \[127\.0\.0\.1\], discarded 80 bytes sent after STARTTLS/);
  assert.doesNotMatch(ph.logs(), /<-- MAIL FROM:<evil@posthorn\.test>/);
});

test('failed handshake closes without reply', async (t) => {
  const ph = await tlsPosthorn();
  t.after(() => ph.stop());
  const c = await TestSmtpClient.connect(ph.port);
  await c.reply();
  await c.command('EHLO client.posthorn.test');
  assert.equal(await c.command('STARTTLS'), '220 2.0.0 Ready to start TLS');
  c.write('QUIT\r\n');
  assert.equal(await c.reply(), '');
  assert.equal(c.closed, true);
  await ph.waitForLog(/STARTTLS=server, error: accept failed=-1, SSL_error=1, timedout=0, errno=\d+/);
  await ph.waitForLog(/STARTTLS=server, relay=localhost \[127\.0\.0\.1\]: .*(wrong version number|packet length too long|http request)/);
});

test('454 with unusable key until fixed', async (t) => {
  const key = path.join(certs.dir, 'shared.key');
  fs.copyFileSync(certs.server.key, key);
  fs.chmodSync(key, 0o644);
  const ph = await tlsPosthorn({ keyFile: key });
  t.after(() => ph.stop());

  const c = await TestSmtpClient.connect(ph.port);
  await c.reply();
  assert.doesNotMatch(await c.command('EHLO client.posthorn.test'), /STARTTLS/);
  assert.equal(await c.command('STARTTLS'), '454 4.7.0 TLS not available due to temporary reason');
  assert.match(await c.command('NOOP'), /^250 /);
  c.close();
  assert.match(ph.logs(), /STARTTLS=server: TLS unavailable, STARTTLS not offered until the files change: ServerKeyFile \S+ is readable by other users \(mode 644\)/);

  fs.chmodSync(key, 0o600);
  const fixed = await startTlsSession(ph.port);
  assert.match(await fixed.command('EHLO client.posthorn.test'), /^250-/);
  fixed.close();
  assert.match(ph.logs(), /STARTTLS=server: certificate and key usable again/);
});

test('TLS_Clt requirement and M=T', async (t) => {
  const ph = await tlsPosthorn({
    access: 'TLS_Clt:127.0.0.9 VERIFY\nTLS_Clt:127.0.0.10 PERM+VERIFY:512\nTLS_Clt:127.0.0.11 ENCR:128+CN:client.posthorn.test\n',
  });
  t.after(() => ph.stop());
  const mail = 'MAIL FROM:<alice@posthorn.test>';

  const clear = await TestSmtpClient.connect(ph.port, '127.0.0.9');
  await clear.reply();
  await clear.command('EHLO client.posthorn.test');
  assert.equal(await clear.command(mail), '530 5.7.0 Must issue a STARTTLS command first');
  clear.close();

  const noCert = await startTlsSession(ph.port, undefined, '127.0.0.9');
  assert.match(await noCert.command('EHLO client.posthorn.test'), /^250-/);
  assert.equal(await noCert.command(mail), '403 4.7.0 not authenticated');
  noCert.close();

  const withCert = await startTlsSession(ph.port, certs.client, '127.0.0.9');
  await withCert.command('EHLO client.posthorn.test');
  assert.match(await withCert.command(mail), /^250 2\.1\.0 /);
  withCert.close();

  const weak = await startTlsSession(ph.port, certs.client, '127.0.0.10');
  await weak.command('EHLO client.posthorn.test');
  assert.equal(await weak.command(mail), '503 5.7.0 encryption too weak 256 less than 512');
  weak.close();

  const named = await startTlsSession(ph.port, undefined, '127.0.0.11');
  await named.command('EHLO client.posthorn.test');
  assert.equal(await named.command(mail), '403 4.7.0 CN  does not match client.posthorn.test');
  named.close();
  const namedCert = await startTlsSession(ph.port, certs.client, '127.0.0.11');
  await namedCert.command('EHLO client.posthorn.test');
  assert.match(await namedCert.command(mail), /^250 /);
  namedCert.close();

  const required = await tlsPosthorn({ daemon: "DAEMON_OPTIONS(`Port=@PORT@, Addr=@ADDR@, Name=MTA, M=T')" });
  t.after(() => required.stop());
  const plain = await TestSmtpClient.connect(required.port);
  await plain.reply();
  await plain.command('EHLO client.posthorn.test');
  assert.equal(await plain.command(mail), '530 5.7.0 Must issue a STARTTLS command first');
  plain.close();
  const secure = await startTlsSession(required.port);
  await secure.command('EHLO client.posthorn.test');
  assert.match(await secure.command(mail), /^250 /);
  secure.close();
});

test('relaying by client certificate', async (t) => {
  const issuer = 'CertIssuer:/C=DE/O=Posthorn+20Test/CN=Posthorn+20Test+20CA';
  const byIssuer = await tlsPosthorn({ access: `${issuer} RELAY\n` });
  t.after(() => byIssuer.stop());
  const bySubject = await tlsPosthorn({
    access: `${issuer} SUBJECT\nCertSubject:/C=DE/O=Posthorn+20Test/CN=client.posthorn.test RELAY\n`,
  });
  t.after(() => bySubject.stop());
  const rcpt = 'RCPT TO:<carol@remote.example>';

  for (const ph of [byIssuer, bySubject]) {
    const verified = await startTlsSession(ph.port, certs.client, '127.0.0.9');
    await verified.command('EHLO client.posthorn.test');
    await verified.command('MAIL FROM:<alice@posthorn.test>');
    assert.match(await verified.command(rcpt), /^250 2\.1\.5 /);
    verified.close();

    for (const cert of [undefined, certs.stranger]) {
      const other = await startTlsSession(ph.port, cert, '127.0.0.9');
      await other.command('EHLO client.posthorn.test');
      await other.command('MAIL FROM:<alice@posthorn.test>');
      assert.match(await other.command(rcpt), /^550 5\.7\.1 <carol@remote\.example>\.\.\. Relaying denied/);
      other.close();
    }
  }
});
