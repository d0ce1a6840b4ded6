// TLS_connection and the macro encoding, form by form, without a network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReply } from '../../src/smtp/reply';
import { parseTlsRequirement, tlsConnection, type TlsFacts } from '../../src/policy/tls-rulesets';
import { encodeMacroValue } from '../../src/tls/encoding';
import { cipherBits } from '../../src/tls/peer';

const verified: TlsFacts = {
  verify: 'OK',
  cipherBits: 256,
  certSubject: '/C=DE/O=Test/CN=mx.example',
  certIssuer: '/C=DE/O=Test/CN=Root',
  cnSubject: 'mx.example',
  tlsName: 'mx.example',
};

function check(facts: TlsFacts, rhs: string): string {
  const r = tlsConnection(facts, rhs);
  return r === undefined ? 'OK' : formatReply(r).trim();
}

test('TLS_connection requirement forms', () => {
  const cases: Array<[Partial<TlsFacts>, string, string]> = [
    [{}, 'VERIFY', 'OK'],
    [{ verify: 'NO' }, 'VERIFY', '403 4.7.0 not authenticated'],
    [{ verify: undefined }, 'VERIFY', '403 4.7.0 authentication required'],
    [{ verify: 'FAIL' }, 'PERM+VERIFY', '503 5.7.0 authentication failed'],
    [{ verify: 'NOT' }, 'TEMP+VERIFY', '403 4.7.0 no authentication requested'],
    [{ verify: 'NONE' }, 'VERIFY', '403 4.7.0 other side does not support STARTTLS'],
    [{ verify: 'TEMP' }, 'VERIFY', '403 4.7.0 authentication failure TEMP'],
    [{ verify: 'SOFTWARE' }, 'ENCR:40', '403 4.7.0 TLS handshake failed.'],
    [{}, 'VERIFY:128', 'OK'],
    [{ cipherBits: 56 }, 'VERIFY:128', '403 4.7.0 encryption too weak 56 less than 128'],
    [{ verify: 'NO', cipherBits: 128 }, 'ENCR:128', 'OK'],
    [{ verify: undefined, cipherBits: 0 }, 'ENCR:128', '403 4.7.0 encryption too weak 0 less than 128'],
    [{}, 'VERIFY+CN', 'OK'],
    [{ tlsName: 'mx2.example' }, 'VERIFY+CN', '403 4.7.0 CN mx.example does not match mx2.example'],
    [{}, 'ENCR:128+CN:MX.example', 'OK'],
    [{}, 'ENCR:128+CN:other.example', '403 4.7.0 CN mx.example does not match other.example'],
    [{}, 'VERIFY+CS:/C=DE/O=Test/CN=mx.example', 'OK'],
    [{}, 'PERM+VERIFY+CS:/CN=x', '503 5.7.0 Cert Subject /C=DE/O=Test/CN=mx.example does not match /CN=x'],
    [{}, 'VERIFY+CN++CI:/C=DE/O=Test/CN=Root', 'OK'],
    [{}, 'VERIFY+CN++CI:/CN=Other', '403 4.7.0 Cert Issuer /C=DE/O=Test/CN=Root does not match /CN=Other'],
    [{ verify: 'NO' }, 'REJECT', 'OK'],
  ];
  for (const [change, rhs, expected] of cases) {
    assert.equal(check({ ...verified, ...change }, rhs), expected, `${rhs} with ${JSON.stringify(change)}`);
  }
});

test('requirement parser rejects other values', () => {
  assert.equal(parseTlsRequirement('ENCR'), undefined);
  assert.equal(parseTlsRequirement('VERIFY+XX:1'), undefined);
  assert.equal(parseTlsRequirement('OK'), undefined);
  assert.deepEqual(parseTlsRequirement('PERM+VERIFY:112')?.code, 503);
});

test('macro encoding and cipher bits', () => {
  assert.equal(encodeMacroValue('CN=Darth Mail (Cert)'), 'CN=Darth+20Mail+20+28Cert+29');
  assert.equal(encodeMacroValue('darth+cert@x'), 'darth+2Bcert@x');
  assert.equal(encodeMacroValue('a<b>"c\\'), 'a+3Cb+3E+22c+5C');
  assert.deepEqual(cipherBits('TLS_AES_128_GCM_SHA256'), [128, 128]);
  assert.deepEqual(cipherBits('ECDHE-RSA-CHACHA20-POLY1305'), [256, 256]);
  assert.deepEqual(cipherBits('DES-CBC3-SHA'), [112, 168]);
});
