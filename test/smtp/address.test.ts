import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  hasRoutingCharacters,
  parseHeaderAddresses,
  parsePath,
  PathResult,
  splitAddress,
} from '../../src/smtp/address';

/** Formats a failed parse as its reply line, or a success as "ok <address>". */
function outcome(result: PathResult): string {
  return result.ok ? `ok ${result.address}` : `${result.code} ${result.enhanced} ${result.text}`;
}

const ACCEPTED: Array<[string, 'mail' | 'rcpt', string]> = [
  ['<user@example.com>', 'mail', 'user@example.com'],
  ['  <user@example.com>', 'rcpt', 'user@example.com'],
  ['user@example.com', 'mail', 'user@example.com'],
  ['<>', 'mail', ''],
  ['<postmaster>', 'rcpt', 'postmaster'],
  ['<"a b"@example.com>', 'rcpt', '"a b"@example.com'],
  ['<"x@y"@example.com>', 'rcpt', '"x@y"@example.com'],
  ['<"a>b"@example.com>', 'rcpt', '"a>b"@example.com'],
  ['<"a\\"b"@example.com>', 'rcpt', '"a\\"b"@example.com'],
  ['"a b"@example.com', 'rcpt', '"a b"@example.com'],
  ['<@a.example,@b.example:user@c.example>', 'rcpt', 'user@c.example'],
  ['<@a.example:user@c.example>', 'mail', 'user@c.example'],
  ['<user@[127.0.0.1]>', 'rcpt', 'user@[127.0.0.1]'],
  ['<user@[IPv6:::1]>', 'rcpt', 'user@[IPv6:::1]'],
  ['<user%other@example.com>', 'rcpt', 'user%other@example.com'],
  ['<host!user@example.com>', 'rcpt', 'host!user@example.com'],
  ['<user@example.com.>', 'rcpt', 'user@example.com.'],
  ['<first.last+tag@sub_domain.example>', 'rcpt', 'first.last+tag@sub_domain.example'],
];

test('parsePath accepts valid paths', () => {
  for (const [arg, kind, address] of ACCEPTED) {
    assert.equal(outcome(parsePath(arg, kind)), `ok ${address}`, arg);
  }
});

const REJECTED: Array<[string, 'mail' | 'rcpt', string]> = [
  ['', 'mail', '501 5.5.2 Syntax error in parameters scanning "from"'],
  ['  ', 'rcpt', '501 5.5.2 Syntax error in parameters scanning "to"'],
  ['<>', 'rcpt', "553 5.0.0 <>... User address required"],
  ['<a@b', 'mail', "553 5.0.0 <a@b... Unbalanced '<'"],
  ['<<a@b>', 'mail', "553 5.0.0 <<a@b>... Unbalanced '<'"],
  ['<<a@b>>', 'mail', '553 5.1.3 <<a@b>>... Invalid address'],
  ['a@b>', 'rcpt', "553 5.0.0 a@b>... Unbalanced '>'"],
  ['<"a@b>', 'rcpt', `553 5.0.0 <"a@b>... Unbalanced '"'`],
  ['<a(b@c>', 'rcpt', "553 5.0.0 <a(b@c>... Unbalanced '('"],
  ['<a)b@c>', 'rcpt', "553 5.0.0 <a)b@c>... Unbalanced ')'"],
  ['<a(x)@c>', 'rcpt', '553 5.1.3 <a(x)@c>... Invalid address'],
  ['<a@b>x', 'rcpt', '553 5.1.3 <a@b>x... Invalid address'],
  ['<@example.com>', 'rcpt', '553 5.1.3 <@example.com>... User address required'],
  ['<@a.example:>', 'rcpt', '553 5.1.3 <@a.example:>... User address required'],
  ['<@a..b:user@c>', 'rcpt', '553 5.1.3 <@a..b:user@c>... Invalid route address'],
  ['<user@>', 'rcpt', '553 5.1.3 <user@>... Hostname required'],
  ['<a@b@c>', 'rcpt', '553 5.1.3 <a@b@c>... Invalid route address'],
  ['<a,b@c>', 'rcpt', '553 5.1.3 <a,b@c>... Invalid route address'],
  ['<a@b:c>', 'rcpt', '553 5.1.3 <a@b:c>... Colon illegal in host name part'],
  ['<a@.b>', 'rcpt', '553 5.1.2 <a@.b>... Invalid host name'],
  ['<a@b..c>', 'rcpt', '553 5.1.2 <a@b..c>... Invalid host name'],
  ['<a@[1.2.3.4]x>', 'rcpt', '553 5.1.2 <a@[1.2.3.4]x>... Invalid address'],
  ['<a@[999.1.1.1]>', 'rcpt', '553 5.1.2 <a@[999.1.1.1]>... Invalid address'],
  ['<a@[IPv6:zz]>', 'rcpt', '553 5.1.2 <a@[IPv6:zz]>... Invalid address'],
  ['<a b@c>', 'rcpt', '553 5.1.3 <a b@c>... Invalid address'],
  ['<a\u0000b@c>', 'mail', '501 5.1.7 Syntax error in mailbox address "<a?b@c>" (non-printable character)'],
  ['<a\u0001b@c>', 'rcpt', '501 5.1.3 Syntax error in mailbox address "<a?b@c>" (non-printable character)'],
  ['<"a\u0007"@c>', 'rcpt', '501 5.1.3 Syntax error in mailbox address "<"a?"@c>" (non-printable character)'],
  ['<j\u00f6rg@c>', 'mail', '501 5.1.7 8-bit character in mailbox address "<j?rg@c>"'],
  ['<j\u00f6rg@c>', 'rcpt', '501 5.1.3 8-bit character in mailbox address "<j?rg@c>"'],
  ['<a\\>', 'rcpt', "553 5.0.0 <a\\>... Unbalanced '<'"],
  ['a\\', 'rcpt', '501 5.1.3 Syntax error in mailbox address "a\\" (trailing \\ character)'],
];

test('parsePath rejects bad paths with sendmail replies', () => {
  for (const [arg, kind, reply] of REJECTED) {
    assert.equal(outcome(parsePath(arg, kind)), reply, JSON.stringify(arg));
  }
});

test('parsePath limits the path to 256 octets', () => {
  const fits = `<${'a'.repeat(240)}@${'b'.repeat(13)}>`;
  assert.equal(fits.length, 256);
  assert.equal(parsePath(fits, 'rcpt').ok, true);

  const long = `<${'a'.repeat(241)}@${'b'.repeat(13)}>`;
  const result = parsePath(long, 'rcpt');
  assert.equal(result.ok, false);
  assert.equal(outcome(result), `553 5.1.1 ${long.slice(0, 256)}... Address too long`);
});

test('parsePath reads ESMTP parameters', () => {
  const result = parsePath('<a@b> SIZE=100  body=8bitmime\tRET=HDRS ENVID=x+2By', 'mail');
  assert.ok(result.ok);
  assert.deepEqual(result.params, [
    { key: 'SIZE', name: 'SIZE', value: '100' },
    { key: 'BODY', name: 'body', value: '8bitmime' },
    { key: 'RET', name: 'RET', value: 'HDRS' },
    { key: 'ENVID', name: 'ENVID', value: 'x+2By' },
  ]);
});

test('parsePath keeps parameter-like text inside quotes', () => {
  const result = parsePath('<"a SIZE=1"@b> NOTIFY=NEVER', 'rcpt');
  assert.ok(result.ok);
  assert.equal(result.address, '"a SIZE=1"@b');
  assert.deepEqual(result.params, [{ key: 'NOTIFY', name: 'NOTIFY', value: 'NEVER' }]);

  const bare = parsePath('"a b"@c SMTPUTF8', 'mail');
  assert.ok(bare.ok);
  assert.equal(bare.address, '"a b"@c');
  assert.deepEqual(bare.params, [{ key: 'SMTPUTF8', name: 'SMTPUTF8' }]);
});

test('parsePath rejects bad parameter syntax', () => {
  assert.equal(outcome(parsePath('<a@b> =1', 'mail')), '555 5.5.4 =1 parameter unrecognized');
  assert.equal(outcome(parsePath('<a@b> SI_ZE=1', 'mail')), '555 5.5.4 SI_ZE parameter unrecognized');
  assert.equal(outcome(parsePath('<a@b> ENVID=a=b', 'mail')), '501 5.5.4 Syntax error in ENVID parameter value');
  assert.equal(
    outcome(parsePath('<a@b> ENVID=a\u00e9', 'mail')),
    '501 5.5.4 Syntax error in ENVID parameter value',
  );

  const many = Array.from({ length: 18 }, (_, i) => `P${i}=1`).join(' ');
  assert.equal(outcome(parsePath(`<a@b> ${many}`, 'mail')), '501 5.5.4 Too many parameters');
  const enough = Array.from({ length: 17 }, (_, i) => `P${i}=1`).join(' ');
  assert.equal(parsePath(`<a@b> ${enough}`, 'mail').ok, true);
});

test('splitAddress splits on the last @ outside quotes', () => {
  assert.deepEqual(splitAddress('User@Example.COM'), { local: 'User', domain: 'example.com' });
  assert.deepEqual(splitAddress('"x@y"@c'), { local: '"x@y"', domain: 'c' });
  assert.deepEqual(splitAddress('postmaster'), { local: 'postmaster', domain: '' });
  assert.deepEqual(splitAddress('a@[IPv6:::1]'), { local: 'a', domain: '[ipv6:::1]' });
  assert.deepEqual(splitAddress(''), { local: '', domain: '' });
});

test('hasRoutingCharacters finds %, ! and quoted @', () => {
  assert.equal(hasRoutingCharacters('user%host'), true);
  assert.equal(hasRoutingCharacters('host!user'), true);
  assert.equal(hasRoutingCharacters('"user@host"'), true);
  assert.equal(hasRoutingCharacters('"a b"'), false);
  assert.equal(hasRoutingCharacters('first.last'), false);
});

test('parseHeaderAddresses reads address lists', () => {
  const cases: Array<[string, string[]]> = [
    ['a@b', ['a@b']],
    ['a@b, c@d', ['a@b', 'c@d']],
    ['John Smith <john@example.com>', ['john@example.com']],
    ['"Smith, John" <john@example.com>, jane@example.com', ['john@example.com', 'jane@example.com']],
    ['a@b (Comment, with (nested) parens)', ['a@b']],
    ['Friends: a@b, "Bob" <c@d>;, e@f', ['a@b', 'c@d', 'e@f']],
    ['undisclosed-recipients:;', []],
    ['"quoted local"@example.com', ['"quoted local"@example.com']],
    ['<@route.example:user@example.com>', ['user@example.com']],
    ['user@[127.0.0.1]', ['user@[127.0.0.1]']],
    ['bob', ['bob']],
    ['a@b,\r\n\tc@d', ['a@b', 'c@d']],
    ['<>, , a@b', ['a@b']],
    ['Name <a@b', ['a@b']],
    // A comma ends an address inside <...>, as in sendmail 8.17, except in a source route.
    ['a@b, bad<<x@, c@d', ['a@b', 'bad<<x@', 'c@d']],
    ['<@r1.example,@r2.example:user@example.com>, c@d', ['user@example.com', 'c@d']],
    ['', []],
    // Old-style lists (no , ; < or (): blanks separate words, as in sendmail's sendtolist().
    ['alice bob', ['alice', 'bob']],
    ['a@b.example\r\n\tc@d.example', ['a@b.example', 'c@d.example']],
    ['"a b"@example.com c@d', ['"a b"@example.com', 'c@d']],
    ['john . doe @ example.com', ['john.doe@example.com']],
  ];
  for (const [value, expected] of cases) {
    assert.deepEqual(parseHeaderAddresses(value), expected, value);
  }
});
