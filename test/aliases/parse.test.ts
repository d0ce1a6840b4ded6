// The aliases file parser and the address list splitter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAliases, splitAddressList } from '../../src/aliases/parse';

test('aliases parse lists and continuations', () => {
  const text = [
    '# comment',
    'Postmaster: root',
    'staff: alice, bob,',
    '\tcarol@example.com',
    '',
    'prog: "|/usr/bin/vacation bob"',
  ].join('\n');
  const parsed = parseAliases(text, '/etc/mail/aliases');
  assert.deepEqual(parsed.errors, []);
  assert.equal(parsed.entries.get('postmaster'), 'root');
  assert.equal(parsed.entries.get('staff'), 'alice, bob, carol@example.com');
  assert.equal(parsed.lines.get('staff'), 3);
  assert.equal(parsed.entries.get('prog'), '"|/usr/bin/vacation bob"');
  assert.equal(parsed.count, 3);
});

test('aliases bad lines named, rest kept', () => {
  const text = ['good: alice', 'no colon here', '  stray continuation', 'user@remote.example: bob', 'after: carol'].join('\n');
  const parsed = parseAliases(text, '/etc/mail/aliases');
  assert.deepEqual(parsed.errors, [
    '/etc/mail/aliases: line 2: missing colon',
    '/etc/mail/aliases: line 4: user@remote.example... cannot alias non-local names',
  ]);
  assert.equal(parsed.entries.get('good'), 'alice');
  assert.equal(parsed.entries.get('after'), 'carol');
  assert.equal(parsed.entries.size, 2);
});

test('aliases space line without entry', () => {
  const parsed = parseAliases(' indented: x\nok: y\n', 'f');
  assert.deepEqual(parsed.errors, ['f: line 1: Non-continuation line starts with space']);
  assert.equal(parsed.entries.get('ok'), 'y');
});

test('aliases statistics as newaliases prints', () => {
  const parsed = parseAliases('a: bb\nlonger: c, d\n', 'f');
  assert.equal(parsed.count, 2);
  assert.equal(parsed.longest, 4);
  assert.equal(parsed.bytes, 1 + 2 + 6 + 4);
});

test('address list splitting', () => {
  assert.deepEqual(splitAddressList('a, b ,c'), ['a', 'b', 'c']);
  assert.deepEqual(splitAddressList('"|/bin/prog a, b", /var/log/x'), ['|/bin/prog a, b', '/var/log/x']);
  assert.deepEqual(splitAddressList('Bob Smith <bob@example.com>, carol (Carol, C)'), ['bob@example.com', 'carol']);
  assert.deepEqual(splitAddressList(':include:/etc/mail/list, \\root'), [':include:/etc/mail/list', '\\root']);
  assert.deepEqual(splitAddressList(' , '), []);
});
