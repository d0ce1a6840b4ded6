// Alias expansion: lists, :include:, programs and files with their safety
// rules, owner- aliases, loops, .forward and virtusertable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AliasExpander, type Expansion, type Target } from '../../src/aliases/expand';
import { expandQueueItem } from '../../src/aliases/queue-expand';
import type { Config } from '../../src/config/types';
import { makeConfig, makeItem } from '../delivery/fixtures';

function setup(t: { after(fn: () => void): void }, aliases: string, options: Record<string, unknown> = {}): { dir: string; config: Config } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aliases-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'aliases'), aliases.replace(/@DIR@/g, dir), { mode: 0o644 });
  const config = makeConfig({
    options: new Map<string, unknown>([
      ['AliasFile', [path.join(dir, 'aliases')]],
      ['DontBlameSendmail', ['TrustStickyBit']],
      ['ForwardPath', `${dir}/home/$u/.forward`],
      ['MaxAliasRecursion', 10],
      ...Object.entries(options),
    ]) as Config['options'],
  });
  return { dir, config };
}

function describe(t: Target): string {
  switch (t.kind) {
    case 'local':
      return `local:${t.user}`;
    case 'remote':
      return `remote:${t.address}`;
    case 'program':
      return `program:${t.command}`;
    case 'file':
      return `file:${t.path}`;
  }
}

function shown(e: Expansion): string[] {
  return e.targets.map(({ target }) => describe(target));
}

test('expand list with nested alias', (t) => {
  const { config } = setup(t, 'staff: alice, team, carol@remote.example\nteam: bob, alice\n');
  const e = new AliasExpander(config).expand('staff@posthorn.test');
  assert.equal(e.error, undefined);
  assert.deepEqual(shown(e), ['local:alice', 'local:bob', 'remote:carol@remote.example']);
  assert.equal(e.changed, true);
});

test('expand plain user unchanged', (t) => {
  const { config } = setup(t, 'staff: alice\n');
  const e = new AliasExpander(config).expand('dave@posthorn.test');
  assert.deepEqual(shown(e), ['local:dave']);
  assert.equal(e.changed, false);
});

test('expand plus detail falls back', (t) => {
  const { config } = setup(t, 'sales: alice\nsales+vip: bob\n');
  const expander = new AliasExpander(config);
  assert.deepEqual(shown(expander.expand('sales+vip@posthorn.test')), ['local:bob']);
  assert.deepEqual(shown(expander.expand('sales+other@posthorn.test')), ['local:alice']);
});

test('expand include file', (t) => {
  const { dir, config } = setup(t, 'list: :include:@DIR@/list.txt\n');
  fs.writeFileSync(path.join(dir, 'list.txt'), '# members\nalice, bob\n"|/bin/cat >/dev/null"\n', { mode: 0o644 });
  const e = new AliasExpander(config).expand('list');
  assert.equal(e.error, undefined);
  assert.deepEqual(shown(e), ['local:alice', 'local:bob', 'program:/bin/cat >/dev/null']);
  const program = e.targets[2].target;
  assert.equal(program.kind === 'program' ? program.ctladdr : '', 'root');
});

test('expand include in unsafe directory refused', (t) => {
  const { dir, config } = setup(t, 'list: :include:@DIR@/open/list.txt, carol\n');
  fs.mkdirSync(path.join(dir, 'open'));
  fs.chmodSync(path.join(dir, 'open'), 0o777);
  fs.writeFileSync(path.join(dir, 'open', 'list.txt'), 'alice\n', { mode: 0o644 });
  const logged: string[] = [];
  const e = new AliasExpander(config, (m) => logged.push(m)).expand('list');
  assert.deepEqual(shown(e), ['local:carol']);
  assert.ok(logged.some((l) => l.includes(`550 5.2.4 Cannot open ${dir}/open/list.txt: World writable directory`)), logged.join('\n'));
});

test('expand include FIFO refused without waiting', async (t) => {
  const { dir, config } = setup(t, 'list: :include:@DIR@/list.fifo, carol\nonly: :include:@DIR@/list.fifo\n');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', ['-m', '644', path.join(dir, 'list.fifo')]);
  const expander = new AliasExpander(config);
  // The other member still gets the message; a list of nothing else bounces with the reason.
  assert.deepEqual(shown(expander.expand('list')), ['local:carol']);
  const alone = expander.expand('only');
  assert.equal(alone.error?.status, 'permfail');
  assert.match(alone.error?.reply ?? '', /^550 5\.2\.4 Cannot open .*list\.fifo: Not a regular file$/);
});

test('expand include read error defers the whole recipient', (t) => {
  // Reading /proc/self/mem from its start fails with EIO: a failure that may pass.
  const { config } = setup(t, 'list: carol, :include:/proc/self/mem\n');
  const e = new AliasExpander(config).expand('list');
  assert.deepEqual(shown(e), []);
  assert.equal(e.error?.status, 'tempfail');
  assert.match(e.error?.reply ?? '', /^451 4\.2\.4 Cannot open \/proc\/self\/mem: /);
});

test('expand missing include bounces with its reason', (t) => {
  const { dir, config } = setup(t, 'list: :include:@DIR@/gone.txt\n');
  const e = new AliasExpander(config).expand('list');
  assert.equal(e.error?.reply, `550 5.2.4 Cannot open ${dir}/gone.txt: No such file or directory`);
});

test('expand writable include refused', (t) => {
  // As sendmail: a list that others can write is not read at all.
  const { dir, config } = setup(t, 'list: :include:@DIR@/list.txt\n');
  const file = path.join(dir, 'list.txt');
  fs.writeFileSync(file, 'alice, "|/bin/cat", /tmp/out\n');
  fs.chmodSync(file, 0o666);
  assert.equal(new AliasExpander(config).expand('list').error?.reply, `550 5.2.4 Cannot open ${file}: Group writable file`);
  fs.chmodSync(file, 0o646);
  assert.equal(new AliasExpander(config).expand('list').error?.reply, `550 5.2.4 Cannot open ${file}: World writable file`);
});

test('expand writable include allowed marks programs unsafe', (t) => {
  const { dir, config } = setup(t, 'list: :include:@DIR@/list.txt\n', {
    DontBlameSendmail: ['TrustStickyBit', 'GroupWritableIncludeFile', 'WorldWritableIncludeFile'],
  });
  const file = path.join(dir, 'list.txt');
  fs.writeFileSync(file, 'alice, "|/bin/cat", /tmp/out\n');
  fs.chmodSync(file, 0o666);
  const logged: string[] = [];
  const e = new AliasExpander(config, (m) => logged.push(m)).expand('list');
  assert.deepEqual(shown(e), ['local:alice']);
  assert.ok(logged.some((l) => l.includes('550 5.7.1 Address list is unsafe for mailing to programs')), logged.join('\n'));
  assert.ok(logged.some((l) => l.includes('550 5.7.1 Address list is unsafe for mailing to files')), logged.join('\n'));
});

test('expand direct program and file refused', (t) => {
  const { config } = setup(t, '');
  const expander = new AliasExpander(config);
  assert.equal(expander.expand('|/bin/sh').error?.reply, '550 5.7.1 Cannot mail directly to programs');
  assert.equal(expander.expand('/etc/passwd').error?.reply, '550 5.7.1 Cannot mail directly to files');
  assert.equal(expander.expand(':include:/etc/passwd').error?.reply, '550 5.7.1 Cannot mail directly to :include:s');
});

test('expand alias program and file allowed', (t) => {
  const { config } = setup(t, 'archive: /var/mail/archive, "|/usr/bin/logger -t mail"\n');
  const e = new AliasExpander(config).expand('archive@posthorn.test');
  assert.deepEqual(shown(e), ['file:/var/mail/archive', 'program:/usr/bin/logger -t mail']);
});

test('expand loop between aliases broken', (t) => {
  const { config } = setup(t, 'ping: pong\npong: ping\n');
  const e = new AliasExpander(config).expand('ping');
  assert.equal(e.error?.reply, '554 5.4.6 aliasing/forwarding loop broken');
  assert.equal(e.error?.status, 'permfail');
});

test('expand depth limit', (t) => {
  const chain = Array.from({ length: 14 }, (_, i) => `a${i}: a${i + 1}`).join('\n');
  const { config } = setup(t, `${chain}\n`, { MaxAliasRecursion: 5 });
  const e = new AliasExpander(config).expand('a0');
  assert.equal(e.error?.reply, '554 5.4.6 aliasing/forwarding loop broken (6 aliases deep; 5 max)');
});

test('expand self reference with backslash', (t) => {
  const { config } = setup(t, 'bob: \\bob, bob@remote.example\n');
  const e = new AliasExpander(config).expand('bob');
  assert.deepEqual(shown(e), ['local:bob', 'remote:bob@remote.example']);
});

test('expand duplicates suppressed', (t) => {
  const { config } = setup(t, 'all: a, b\na: carol\nb: carol, dave\n');
  assert.deepEqual(shown(new AliasExpander(config).expand('all')), ['local:carol', 'local:dave']);
});

test('expand owner alias sets sender', (t) => {
  const { config } = setup(t, 'list: alice, bob\nowner-list: listadmin\nother: carol\n');
  const expander = new AliasExpander(config);
  const e = expander.expand('list');
  assert.deepEqual(e.targets.map((x) => x.owner), ['listadmin@posthorn.test', 'listadmin@posthorn.test']);
  assert.deepEqual(expander.expand('other').targets.map((x) => x.owner), [undefined]);
});

test('expand forward file', (t) => {
  const { dir, config } = setup(t, '');
  fs.mkdirSync(path.join(dir, 'home', 'dave'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'home', 'dave', '.forward'), '\\dave, dave@remote.example, "|/bin/cat"\n', { mode: 0o644 });
  const e = new AliasExpander(config).expand('dave@posthorn.test');
  assert.deepEqual(shown(e), ['local:dave', 'remote:dave@remote.example', 'program:/bin/cat']);
  const program = e.targets[2].target;
  // dave has no account: the file's owner (root, who wrote it here) controls the program.
  assert.equal(program.kind === 'program' ? program.ctladdr : '', 'root');
});

test('expand group writable forward ignored', (t) => {
  // As sendmail ("forward: ...: Group writable file"): the mail stays in the mailbox.
  const { dir, config } = setup(t, '');
  fs.mkdirSync(path.join(dir, 'home', 'erin'), { recursive: true });
  const file = path.join(dir, 'home', 'erin', '.forward');
  fs.writeFileSync(file, 'erin@remote.example, "|/bin/cat"\n');
  fs.chmodSync(file, 0o664);
  const logged: string[] = [];
  const e = new AliasExpander(config, (m) => logged.push(m)).expand('erin');
  assert.deepEqual(shown(e), ['local:erin']);
  assert.ok(logged.includes(`forward ${file}: Group writable file`), logged.join('\n'));
});

test('expand group writable forward allowed is unsafe', (t) => {
  const { dir, config } = setup(t, '', { DontBlameSendmail: ['TrustStickyBit', 'GroupWritableForwardFile'] });
  fs.mkdirSync(path.join(dir, 'home', 'erin'), { recursive: true });
  const file = path.join(dir, 'home', 'erin', '.forward');
  fs.writeFileSync(file, 'erin@remote.example, "|/bin/cat"\n');
  fs.chmodSync(file, 0o664);
  const e = new AliasExpander(config).expand('erin');
  assert.deepEqual(shown(e), ['remote:erin@remote.example']);
});

test('expand virtusertable key forms', (t) => {
  const { dir, config } = setup(t, 'sales: alice\n');
  fs.writeFileSync(
    path.join(dir, 'virtusertable'),
    ['info@virtual.example sales', 'bob+*@virtual.example bob-%2@remote.example', '@virtual.example %1@catchall.example', 'nobody@virtual.example error:nouser User unknown'].join('\n'),
  );
  config.features.push({ name: 'virtusertable', args: [`text ${dir}/virtusertable`], file: 'test', line: 1 });
  config.classes.set('VirtHost', new Set(['virtual.example']));
  const expander = new AliasExpander(config);
  assert.deepEqual(shown(expander.expand('info@virtual.example')), ['local:alice']);
  assert.deepEqual(shown(expander.expand('bob+news@virtual.example')), ['remote:bob-news@remote.example']);
  assert.deepEqual(shown(expander.expand('zed@virtual.example')), ['remote:zed@catchall.example']);
  assert.equal(expander.expand('nobody@virtual.example').error?.reply, '550 5.1.1 User unknown');
});

test('queue item expansion keeps original as ORCPT', (t) => {
  const { config } = setup(t, 'staff: alice, |/bin/true\n');
  const item = makeItem('q1', [{ address: 'staff@posthorn.test', state: 'pending' }, { address: 'x@remote.example', state: 'pending' }]);
  const failures = expandQueueItem(item, new AliasExpander(config), () => undefined);
  assert.deepEqual(failures, []);
  assert.deepEqual(
    item.recipients.map((r) => [r.address, r.parent, r.orcpt]),
    [
      ['alice', 'staff@posthorn.test', 'rfc822;staff@posthorn.test'],
      ['|/bin/true', 'staff@posthorn.test', 'rfc822;staff@posthorn.test'],
      ['x@remote.example', undefined, undefined],
    ],
  );
});

test('queue item expansion failure reported', (t) => {
  const { config } = setup(t, 'ping: pong\npong: ping\n');
  const item = makeItem('q2', [{ address: 'ping@posthorn.test', state: 'pending' }]);
  const failures = expandQueueItem(item, new AliasExpander(config), () => undefined);
  assert.equal(failures.length, 1);
  assert.deepEqual(failures[0].result, { address: 'ping@posthorn.test', status: 'permfail', dsn: '5.4.6', text: 'aliasing/forwarding loop broken' });
});

test('expand self loop bounces the name', (t) => {
  // sendmail: "self: self, root" without an account self delivers to root and bounces self as User unknown.
  const { config } = setup(t, 'self: self, root\n');
  const e = new AliasExpander(config).expand('self');
  assert.deepEqual(shown(e), ['local:root']);
  assert.equal(e.nested.length, 1);
  assert.equal(e.nested[0].address, 'self');
  assert.equal(e.nested[0].reply, '550 5.1.1 User unknown');
});

test('verify shows a failed list member', async (t) => {
  const { dir, config } = setup(t, 'crew: root, :include:@DIR@/gone.txt\n');
  const { runVerify } = await import('../../src/cli/verify');
  const lines: string[] = [];
  const status = runVerify(config, ['crew'], (line) => lines.push(line));
  // As sendmail 8.17 -bv: the member's error first, then the deliverable ones, exit 64.
  assert.deepEqual(lines, [
    `:include:${dir}/gone.txt... Cannot open ${dir}/gone.txt: No such file or directory`,
    'root... deliverable: mailer local, user root',
  ]);
  assert.equal(status, 64);
});
