// ${cert_subject} and ${cert_issuer} for names with a comma, UTF-8 or a
// multi-valued RDN. sendmail takes OpenSSL's X509_NAME_oneline() form
// ("/O=Example, Inc./OU=M\xC3\xBCnchen", what `openssl x509 -nameopt compat`
// prints) and xtext-encodes it. Posthorn built it from Node's RFC 2253 text,
// which escapes the comma ("O=Example\, Inc."), so a CertSubject: or
// CertIssuer: key that sendmail 8.17 matches (checked with Debian's sendmail
// on the same certificate) did not match: a CA such as "O=GoDaddy.com, Inc."
// could not grant relaying. ${cn_subject} is the first CN, as
// X509_NAME_get_text_by_NID() returns it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { runCommand } from '../helpers/process';
import { requirePeer } from '../helpers/peers';
import { startTlsPosthorn, startTlsSession } from '../helpers/tls-setup';
import { oneLineDn, tlsInfoOf } from '../../src/tls/peer';
import { makeTestCerts, type CertFile, type TestCerts } from '../tls/certs';

const SUBJECT = '/C=DE/O=Example, Inc./OU=M\u00fcnchen/OU=a\\+b<c>"d"/CN=first, odd/CN=second';
// The subject as sendmail 8.17 puts it into ${cert_subject}.
const SENDMAIL_SUBJECT = '/C=DE/O=Example,+20Inc./OU=M+5CxC3+5CxBCnchen/OU=a+5C+2Bb+3Cc+3E+22d+22/CN=first,+20odd/CN=second';

let certs: TestCerts;
let odd: CertFile;

async function openssl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await runCommand('openssl', args, { env: { ...process.env, ...env }, timeoutMs: 30_000 });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

before(async () => {
  certs = await makeTestCerts();
  const ca = path.join(certs.dir, 'ca');
  odd = { cert: path.join(certs.dir, 'odd.crt'), key: path.join(certs.dir, 'odd.key') };
  const csr = path.join(certs.dir, 'odd.csr');
  await openssl(['req', '-new', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', odd.key, '-subj', SUBJECT, '-out', csr]);
  fs.chmodSync(odd.key, 0o600);
  await openssl(['ca', '-batch', '-utf8', '-config', path.join(ca, 'ca.cnf'), '-cert', path.join(ca, 'ca.crt'),
    '-keyfile', path.join(ca, 'ca.key'), '-extensions', 'leaf', '-days', '30', '-in', csr, '-out', odd.cert, '-notext'],
  { SAN: 'DNS:odd.example' });
});
after(() => certs?.remove());

test('one-line DN matches openssl compat', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const printed = (await openssl(['x509', '-in', odd.cert, '-noout', '-subject', '-nameopt', 'compat'])).trim();
  const cert = new X509Certificate(fs.readFileSync(odd.cert));
  assert.equal(`subject=${oneLineDn(cert.subject)}`, printed);
  assert.equal(oneLineDn(cert.subject), '/C=DE/O=Example, Inc./OU=M\\xC3\\xBCnchen/OU=a\\+b<c>"d"/CN=first, odd/CN=second');
});

test('cert_subject and cn_subject encoding', async (t) => {
  const server = tls.createServer({
    cert: fs.readFileSync(certs.server.cert),
    key: fs.readFileSync(certs.server.key),
    ca: fs.readFileSync(certs.caCert),
    requestCert: true,
    rejectUnauthorized: false,
  });
  const infos: Array<ReturnType<typeof tlsInfoOf>> = [];
  server.on('secureConnection', (socket) => {
    infos.push(tlsInfoOf(socket, true));
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, cert: fs.readFileSync(odd.cert), key: fs.readFileSync(odd.key) });
    client.once('close', () => resolve());
    client.once('error', reject);
    client.resume();
  });
  assert.equal(infos.length, 1);
  assert.equal(infos[0].verify, 'OK');
  assert.equal(infos[0].certSubject, SENDMAIL_SUBJECT);
  assert.equal(infos[0].cnSubject, 'first,+20odd');
});

test('CertSubject key grants relaying', async (t) => {
  const ph = await startTlsPosthorn(certs, {
    access: [
      'CertIssuer:/C=DE/O=Posthorn+20Test/CN=Posthorn+20Test+20CA\tSUBJECT',
      `CertSubject:${SENDMAIL_SUBJECT}\tRELAY`,
      '',
    ].join('\n'),
  });
  t.after(() => ph.stop());
  const client = await startTlsSession(ph.port, odd, '127.0.0.9');
  try {
    assert.match(await client.command('EHLO client.example'), /^250[ -]/);
    assert.match(await client.command('MAIL FROM:<a@client.example>'), /^250 /);
    assert.equal(await client.command('RCPT TO:<x@remote.example>'), '250 2.1.5 <x@remote.example>... Recipient ok');
  } finally {
    client.close();
  }
});
