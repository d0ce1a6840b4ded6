// /file targets of .forward and :include: files: written as the file's user,
// never as root, and one message at a time, so that two deliveries to the
// same file never mix their lines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { AliasExpander } from '../../src/aliases/expand';
import { expandQueueItem } from '../../src/aliases/queue-expand';
import type { Config } from '../../src/config/types';
import { deliverToFile } from '../../src/delivery/file-mailer';
import { deliverLocalRoute } from '../../src/delivery/local-delivery';
import { makeConfig, makeItem } from '../delivery/fixtures';

const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
/** A uid without an account, as a list file's owner may be. */
const OUTSIDER = 4242;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'break14-file-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Others may pass through, as through /home.
  fs.chmodSync(dir, 0o755);
  return dir;
}

function configFor(dir: string): Config {
  return makeConfig({
    options: new Map<string, unknown>([
      ['AliasFile', [path.join(dir, 'aliases')]],
      ['ForwardPath', `${dir}/forward/$u`],
      ['DontBlameSendmail', ['TrustStickyBit']],
    ]) as Config['options'],
    mailboxDirectory: path.join(dir, 'mail'),
  });
}

test('file target of a .forward is not written as root', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = tempDir(t);
  const config = configFor(dir);
  fs.writeFileSync(path.join(dir, 'aliases'), '');
  fs.mkdirSync(path.join(dir, 'mail'));
  // A file only root may write, as /etc/passwd.
  const guarded = path.join(dir, 'guarded');
  fs.mkdirSync(guarded, { mode: 0o755 });
  const victim = path.join(guarded, 'passwd');
  fs.writeFileSync(victim, 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
  // The .forward of "ghost", a name without an account, belongs to the outsider.
  fs.mkdirSync(path.join(dir, 'forward'), { mode: 0o755 });
  const forward = path.join(dir, 'forward', 'ghost');
  fs.writeFileSync(forward, `${victim}\n`);
  fs.chownSync(forward, OUTSIDER, OUTSIDER);

  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'evil::0:0::/root:/bin/sh\r\n');
  const item = makeItem('q1', [{ address: 'ghost@posthorn.test', state: 'pending' }]);
  expandQueueItem(item, new AliasExpander(config), () => undefined);
  assert.deepEqual(item.recipients.map((r) => [r.address, r.ctladdr]), [[victim, String(OUTSIDER)]]);

  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.equal(results[0].status, 'permfail', JSON.stringify(results[0]));
  assert.equal(results[0].text, "Can't create output: Permission denied");
  assert.equal(fs.readFileSync(victim, 'latin1'), 'root:x:0:0::/root:/bin/sh\n');
});

test('file target of an :include: is written as its owner', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = tempDir(t);
  const config = configFor(dir);
  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o1777);
  const archive = path.join(open, 'archive');
  const list = path.join(dir, 'list');
  fs.writeFileSync(list, `${archive}\n`, { mode: 0o644 });
  fs.chownSync(list, OUTSIDER, OUTSIDER);
  fs.writeFileSync(path.join(dir, 'aliases'), `team: :include:${list}\n`);
  const dataPath = path.join(dir, 'df');
  fs.writeFileSync(dataPath, 'hello\r\n');
  const item = makeItem('q2', [{ address: 'team@posthorn.test', state: 'pending' }]);
  expandQueueItem(item, new AliasExpander(config), () => undefined);
  const { results } = await deliverLocalRoute(item, item.recipients, 'local', { config, dataPath, firstAttempt: true });
  assert.equal(results[0].status, 'sent', JSON.stringify(results[0]));
  assert.equal(fs.statSync(archive).uid, OUTSIDER);
  assert.match(fs.readFileSync(archive, 'latin1'), /\n\nhello\n\n$/);
});

test('two deliveries to one file do not mix', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'archive');
  const line = (c: string): string => `${c.repeat(70)}\r\n`;
  const paths = ['A', 'B'].map((c) => {
    const p = path.join(dir, `df${c}`);
    fs.writeFileSync(p, line(c).repeat(40_000));
    return p;
  });
  const results = await Promise.all(
    paths.map((dataPath, i) => deliverToFile(target, target, { sender: `s${i}@x.test`, headers: ['Subject: big'], dataPath }, { dbs: new Set() })),
  );
  assert.deepEqual(results.map((r) => r.status), ['sent', 'sent']);
  const text = fs.readFileSync(target, 'latin1');
  // Each message is one run of its own lines: A...A then B...B, or B...B then A...A.
  const runs = text.split('\n').filter((l) => /^[AB]{70}$/.test(l)).map((l) => l[0]).join('').replace(/(.)\1*/g, '$1');
  assert.ok(runs === 'AB' || runs === 'BA', `the messages were mixed: ${runs.slice(0, 40)}`);
  assert.equal(text.split('\n').filter((l) => l.startsWith('From ')).length, 2);
  assert.equal(fs.existsSync(`${target}.lock`), false);
});
