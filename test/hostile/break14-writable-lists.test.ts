// Files that others can write: a world-writable .forward or :include: file
// must not decide where mail goes, as sendmail refuses them ("Group writable
// file", "World writable file"). And newaliases on two malformed entries that
// sendmail's newaliases reports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { AliasExpander } from '../../src/aliases/expand';
import { parseAliases } from '../../src/aliases/parse';
import type { Config } from '../../src/config/types';
import { makeConfig } from '../delivery/fixtures';

function setup(t: { after(fn: () => void): void }, aliases: string): { dir: string; config: Config } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'break14-lists-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'aliases'), aliases.replace(/@DIR@/g, dir), { mode: 0o644 });
  fs.mkdirSync(path.join(dir, 'forward'));
  const config = makeConfig({
    options: new Map<string, unknown>([
      ['AliasFile', [path.join(dir, 'aliases')]],
      ['ForwardPath', `${dir}/forward/$u`],
      ['DontBlameSendmail', ['TrustStickyBit']],
    ]) as Config['options'],
  });
  return { dir, config };
}

test('world-writable .forward does not redirect mail', (t) => {
  const { dir, config } = setup(t, '');
  const file = path.join(dir, 'forward', 'bob');
  // Anyone could have written this line.
  fs.writeFileSync(file, 'thief@elsewhere.example\n');
  fs.chmodSync(file, 0o646);
  const logged: string[] = [];
  const e = new AliasExpander(config, (m) => logged.push(m)).expand('bob');
  assert.deepEqual(e.targets.map((x) => x.target), [{ kind: 'local', user: 'bob' }]);
  assert.ok(logged.includes(`forward ${file}: World writable file`), logged.join('\n'));
});

test('world-writable list is not read', (t) => {
  const { dir, config } = setup(t, 'staff: alice, :include:@DIR@/staff.list\n');
  const list = path.join(dir, 'staff.list');
  fs.writeFileSync(list, 'carol\nintruder@elsewhere.example\n');
  fs.chmodSync(list, 0o666);
  const e = new AliasExpander(config).expand('staff');
  assert.deepEqual(e.targets.map((x) => x.target), [{ kind: 'local', user: 'alice' }]);
  assert.deepEqual(e.nested.map((x) => x.reply), [`550 5.2.4 Cannot open ${list}: Group writable file`]);
});

test('newaliases reports an empty value and a repeated name', () => {
  const parsed = parseAliases('empty:\ndup: a\ndup: b\nlater:\n\tcarol\n', '/etc/aliases');
  assert.deepEqual(parsed.errors, [
    '/etc/aliases: line 1: empty:... missing value for alias',
    '/etc/aliases: line 3: dup... Warning: duplicate alias name dup',
  ]);
  assert.equal(parsed.entries.has('empty'), false);
  assert.equal(parsed.entries.get('dup'), 'b');
  assert.equal(parsed.entries.get('later'), 'carol');
});
