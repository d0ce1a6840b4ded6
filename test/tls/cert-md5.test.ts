// ${cert_md5}: the peer certificate's MD5 fingerprint as sendmail writes it,
// compared with what `openssl x509 -fingerprint -md5` prints for the same file.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { runCommand } from '../helpers/process';
import { requirePeer } from '../helpers/peers';
import { setTlsMacros, tlsInfoOf } from '../../src/tls/peer';
import { makeTestCerts, type TestCerts } from './certs';

let certs: TestCerts;
before(async () => {
  certs = await makeTestCerts();
});
after(() => certs.remove());

test('cert_md5 matches openssl and is empty without a certificate', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const printed = await runCommand(openssl, ['x509', '-noout', '-fingerprint', '-md5', '-in', certs.server.cert], { timeoutMs: 30_000 });
  assert.equal(printed.code, 0, printed.stderr);
  const expected = /Fingerprint=([0-9A-F:]+)/i.exec(printed.stdout)?.[1];
  assert.ok(expected, printed.stdout);

  const server = tls.createServer({ cert: fs.readFileSync(certs.server.cert), key: fs.readFileSync(certs.server.key) }, (socket) => {
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;

  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
  const info = tlsInfoOf(socket, true);
  socket.destroy();
  assert.equal(info.certMd5, expected.toUpperCase());
  const macros = new Map<string, string>();
  setTlsMacros(macros, info);
  assert.equal(macros.get('{cert_md5}'), expected.toUpperCase());

  setTlsMacros(macros, { ...info, certMd5: '' });
  assert.equal(macros.get('{cert_md5}'), '');
});
