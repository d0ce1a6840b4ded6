import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandMacros } from '../../src/config/macros';

const MACROS: Record<string, string> = {
  j: 'mx.example.org',
  v: '0.1.0',
  Z: '8.13',
  b: 'Mon, 1 Jan 2024 00:00:00 +0000',
  daemon_name: 'MTA',
  x: 'Ada Lovelace',
  g: 'ada@example.org',
  empty: '',
};
const lookup = (name: string): string | undefined => MACROS[name];

test('expandMacros single-letter and long names', () => {
  assert.equal(expandMacros('$j Posthorn $v/$Z; $b', lookup),
    'mx.example.org Posthorn 0.1.0/8.13; Mon, 1 Jan 2024 00:00:00 +0000');
  assert.equal(expandMacros('daemon ${daemon_name}.', lookup), 'daemon MTA.');
});

test('expandMacros undefined macro is empty', () => {
  assert.equal(expandMacros('[$q]', lookup), '[]');
  assert.equal(expandMacros('[${nothing}]', lookup), '[]');
});

test('expandMacros double dollar is literal', () => {
  assert.equal(expandMacros('cost $$5 at $j', lookup), 'cost $5 at mx.example.org');
});

test('expandMacros conditional with else', () => {
  assert.equal(expandMacros('$?x$x <$g>$|$g$.', lookup), 'Ada Lovelace <ada@example.org>');
  assert.equal(expandMacros('$?q$q <$g>$|$g$.', lookup), 'ada@example.org');
  assert.equal(expandMacros('$?{empty}yes$|no$.', lookup), 'no');
});

test('expandMacros conditional without else', () => {
  assert.equal(expandMacros('a$?jB$.c', lookup), 'aBc');
  assert.equal(expandMacros('a$?qB$.c', lookup), 'ac');
});

test('expandMacros nested conditionals', () => {
  assert.equal(expandMacros('$?j[$?q q $| no-q $.]$|none$.', lookup), '[ no-q ]');
  assert.equal(expandMacros('$?q$?j x $. $| y $.', lookup), ' y ');
});

test('expandMacros values are not expanded again', () => {
  assert.equal(expandMacros('$t', (name) => (name === 't' ? '$j' : undefined)), '$j');
});
