import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkMailParams,
  checkRcptParams,
  EsmtpParam,
  xtextDecode,
  xtextEncode,
} from '../../src/smtp/params';

const EXT = { maxMessageSize: 1000, dsn: true };

function param(word: string): EsmtpParam {
  const equals = word.indexOf('=');
  if (equals < 0) return { key: word.toUpperCase() };
  return { key: word.slice(0, equals).toUpperCase(), value: word.slice(equals + 1) };
}

function mailReply(words: string[], ext = EXT): string {
  const result = checkMailParams(words.map(param), ext);
  return result.ok ? 'ok' : `${result.code} ${result.enhanced} ${result.text}`;
}

function rcptReply(words: string[], dsn = true): string {
  const result = checkRcptParams(words.map(param), { dsn });
  return result.ok ? 'ok' : `${result.code} ${result.enhanced} ${result.text}`;
}

test('checkMailParams returns the values', () => {
  const result = checkMailParams(
    ['SIZE=1000', 'BODY=8bitmime', 'RET=hdrs', 'ENVID=abc+2B'].map(param),
    EXT,
  );
  assert.deepEqual(result, { ok: true, size: 1000, body: '8BITMIME', ret: 'HDRS', envid: 'abc+2B' });
  assert.deepEqual(checkMailParams([], EXT), { ok: true });
});

test('checkMailParams SIZE replies', () => {
  assert.equal(mailReply(['SIZE=1001']), '552 5.2.3 Message size exceeds fixed maximum message size (1000)');
  assert.equal(mailReply(['SIZE=99999999'], { maxMessageSize: 0, dsn: true }), 'ok');
  assert.equal(mailReply(['SIZE']), '501 5.5.2 SIZE requires a value');
  assert.equal(mailReply(['SIZE=-5']), '552 5.2.3 Message size invalid');
  assert.equal(mailReply(['SIZE=99999999999999999999']), '552 5.2.3 Message size exceeds maximum value');
  // strtol() in sendmail: no digits, or none at all, declare size 0.
  assert.equal(mailReply(['SIZE=abc']), 'ok');
  assert.equal(mailReply(['SIZE=']), 'ok');
});

// Expected texts are sendmail 8.17.1.9's replies to the same parameters.
test('empty parameter values as sendmail', () => {
  assert.equal(mailReply(['BODY=']), '501 5.5.4 Unknown BODY type ');
  assert.equal(mailReply(['RET=']), '501 5.5.2 Bad argument "" to RET');
  assert.equal(mailReply(['ENVID=']), 'ok');
  assert.equal(rcptReply(['NOTIFY=']), '501 5.5.4 Bad argument ""  to NOTIFY');
  assert.equal(rcptReply(['ORCPT=']), '501 5.5.4 Syntax error in ORCPT parameter value');
});

test('AUTH parameter checked, then ignored', () => {
  assert.equal(mailReply(['AUTH=<>']), 'ok');
  assert.equal(mailReply(['AUTH=a@b.example']), 'ok');
  assert.equal(mailReply(['AUTH=']), 'ok');
  assert.equal(mailReply(['AUTH']), '501 5.5.2 AUTH= requires a value');
  assert.equal(mailReply(['AUTH=a+ZZb']), '501 5.5.4 Syntax error in AUTH parameter value');
});

test('checkMailParams BODY replies', () => {
  assert.equal(mailReply(['BODY=7bit']), 'ok');
  assert.equal(mailReply(['BODY=BINARYMIME']), '501 5.5.4 Unknown BODY type BINARYMIME');
  assert.equal(mailReply(['BODY']), '501 5.5.2 BODY requires a value');
});

test('checkMailParams RET and ENVID replies', () => {
  assert.equal(mailReply(['RET=x']), '501 5.5.2 Bad argument "x" to RET');
  assert.equal(mailReply(['RET=FULL', 'RET=HDRS']), '501 5.5.0 Duplicate RET parameter');
  assert.equal(mailReply(['RET']), '501 5.5.2 RET requires a value');
  assert.equal(mailReply(['ENVID=a', 'ENVID=b']), '501 5.5.0 Duplicate ENVID parameter');
  assert.equal(mailReply(['ENVID=a+2']), '501 5.5.4 Syntax error in ENVID parameter value');
  assert.equal(mailReply(['ENVID']), '501 5.5.2 ENVID requires a value');
});

test('checkMailParams without DSN', () => {
  const ext = { maxMessageSize: 0, dsn: false };
  assert.equal(mailReply(['RET=FULL'], ext), '504 5.7.0 Sorry, RET not supported, we do not allow DSN');
  assert.equal(mailReply(['ENVID=x'], ext), '504 5.7.0 Sorry, ENVID not supported, we do not allow DSN');
});

test('checkMailParams unknown parameter', () => {
  assert.equal(mailReply(['FOO=1']), '555 5.5.4 FOO parameter unrecognized');
  assert.equal(mailReply(['SIZE=1', 'XYZ']), '555 5.5.4 XYZ parameter unrecognized');
});

test('checkRcptParams returns the values', () => {
  const result = checkRcptParams(['NOTIFY=success,Delay', 'ORCPT=rfc822;a+40b'].map(param), { dsn: true });
  assert.deepEqual(result, { ok: true, notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;a+40b' });
  assert.deepEqual(checkRcptParams([param('NOTIFY=never')], { dsn: true }), { ok: true, notify: ['NEVER'] });
});

test('checkRcptParams NOTIFY replies', () => {
  assert.equal(rcptReply(['NOTIFY=NEVER,SUCCESS']), '501 5.5.4 Bad argument "NEVER"  to NOTIFY');
  assert.equal(rcptReply(['NOTIFY=SUCCESS,bogus']), '501 5.5.4 Bad argument "bogus"  to NOTIFY');
  assert.equal(rcptReply(['NOTIFY']), '501 5.5.2 NOTIFY requires a value');
  assert.equal(rcptReply(['NOTIFY=NEVER'], false), '504 5.7.0 Sorry, NOTIFY not supported, we do not allow DSN');
});

test('checkRcptParams ORCPT replies', () => {
  assert.equal(rcptReply(['ORCPT=rfc822;a', 'ORCPT=rfc822;b']), '501 5.5.0 Duplicate ORCPT parameter');
  assert.equal(rcptReply(['ORCPT=rfc822']), '501 5.5.4 Syntax error in ORCPT parameter value');
  assert.equal(rcptReply(['ORCPT=;a@b']), '501 5.5.4 Syntax error in ORCPT parameter value');
  assert.equal(rcptReply(['ORCPT=rfc822;a+4']), '501 5.5.4 Syntax error in ORCPT parameter value');
  assert.equal(rcptReply(['ORCPT']), '501 5.5.2 ORCPT requires a value');
  assert.equal(rcptReply(['SIZE=1']), '555 5.5.4 SIZE parameter unrecognized');
});

test('xtextDecode decodes and validates', () => {
  assert.equal(xtextDecode('a+2Bb+3D'), 'a+b=');
  assert.equal(xtextDecode('a+2bc'), 'a+c');
  assert.equal(xtextDecode(''), '');
  assert.equal(xtextDecode('a b'), undefined);
  assert.equal(xtextDecode('a=b'), undefined);
  assert.equal(xtextDecode('a+'), undefined);
  assert.equal(xtextDecode('a+G1'), undefined);
  assert.equal(xtextDecode('\u00e9'), undefined);
});

test('xtextEncode encodes specials in upper-case hex', () => {
  assert.equal(xtextEncode('a+b=c d'), 'a+2Bb+3Dc+20d');
  assert.equal(xtextEncode('\u00e9'), '+E9');
  assert.equal(xtextEncode('\u20ac'), '+E2+82+AC');
});

test('xtext round trip', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), (s) => {
      const encoded = xtextEncode(s);
      assert.match(encoded, /^[\x21-\x3c\x3e-\x7e]*$/);
      assert.equal(xtextDecode(encoded), s);
    }),
  );
});

test('a very long unknown keyword is shortened in the reply', () => {
  const reply = mailReply([`${'Y'.repeat(1900)}=1`]);
  assert.ok(reply.length < 512, `${reply.length} bytes`);
  assert.equal(reply, `555 5.5.4 ${'Y'.repeat(200)}... parameter unrecognized`);
});
