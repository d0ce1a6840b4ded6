// Hostile map and alias sources: makemap and newaliases must report each bad
// line with its file and line number and exit with a sysexits code, never a
// stack trace.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../helpers/peers';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, type CommandResult } from '../helpers/process';

const makemapBin = path.join(repoRoot, 'bin', 'makemap');
const EX_DATAERR = 65;

function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-input-maps-'));
  return run(dir).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

function makemap(dir: string, source: Buffer | string): Promise<CommandResult> {
  return runCommand(process.execPath, [makemapBin, 'hash', path.join(dir, 'access')], {
    input: source,
    timeoutMs: 30_000,
  });
}

function assertNoStack(result: CommandResult): void {
  assert.doesNotMatch(result.stderr, /^\s+at /m, `stack trace:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /TypeError/);
}

test('makemap line without value', async () => {
  await withDir(async (dir) => {
    const result = await makemap(dir, 'keyonly\n');
    assert.equal(result.code, EX_DATAERR);
    assert.match(result.stderr, /access:1: missing value for key keyonly/);
    assert.equal(fs.existsSync(path.join(dir, 'access.db')), false);
  });
});

test('makemap key of 2 MB and NULs', async () => {
  await withDir(async (dir) => {
    const result = await makemap(dir, `${'k'.repeat(2_000_000)} OK\nke\0y OK\nok2 v\0al\n`);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(fs.statSync(path.join(dir, 'access.db')).size > 2_000_000);
  });
});

// A vertical tab, form feed or lone CR between key and value is white space,
// as C's isspace() says for sendmail's makemap. Binary input gives errors, not a crash.
for (const [name, source] of [
  ['vertical tab', 'a\vb\n'],
  ['form feed', 'a\fb c\n'],
  ['CR in value', 'key val\rue\n'],
] as const) {
  test(`makemap ${name} line`, async () => {
    await withDir(async (dir) => {
      const result = await makemap(dir, source);
      assertNoStack(result);
      assert.notEqual(result.code, 1, 'exit code 1 is not a sysexits code');
    });
  });
}

test('makemap binary source', async () => {
  await withDir(async (dir) => {
    const result = await makemap(dir, crypto.randomBytes(1_000_000));
    assertNoStack(result);
    assert.ok(result.code === 0 || result.code === EX_DATAERR, `exit code ${result.code}`);
  });
});

async function newaliases(dir: string, aliases: string): Promise<CommandResult> {
  const file = path.join(dir, 'aliases');
  fs.writeFileSync(file, aliases, { mode: 0o644 });
  const mc = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(
    mc,
    [
      `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
      `define(\`confLOG_FILE', \`${dir}/maillog')`,
      `define(\`ALIAS_FILE', \`${file}')`,
      "LOCAL_DOMAIN(`posthorn.test')",
      "MAILER(`local')",
      '',
    ].join('\n'),
  );
  fs.chmodSync(dir, 0o755);
  return runCommand(process.execPath, [posthornBin, '-C', mc, '-bi'], { cwd: dir, timeoutMs: 30_000 });
}

test('newaliases lines without colon', async () => {
  await withDir(async (dir) => {
    const result = await newaliases(dir, 'postmaster root\nalice: bob\n');
    assertNoStack(result);
    assert.match(result.stderr + result.stdout, /aliases: line 1: missing colon/);
    assert.match(result.stdout, /: 1 aliases,/);
  });
});

test('newaliases hostile names', async () => {
  await withDir(async (dir) => {
    const result = await newaliases(dir, ' a: b\n\xff\xfe: x\n:: y\n: z\n"a b": c\nok: a\0b\n');
    assertNoStack(result);
    assert.match(result.stderr + result.stdout, /line 3: .*illegal alias name/);
    assert.match(result.stderr + result.stdout, /line 1: Non-continuation line starts with space/);
  });
});

test('newaliases loops and pipes', async () => {
  await withDir(async (dir) => {
    const aliases = `a: b\nb: a\nc: "|/bin/true"\nd: ${dir}/out\ne: :include:/nonexistent/list\n`;
    const result = await newaliases(dir, aliases);
    assertNoStack(result);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /: 5 aliases,/);
  });
});

test('newaliases 200000 targets', async () => {
  await withDir(async (dir) => {
    const targets = Array.from({ length: 200_000 }, (_, i) => `u${i}`).join(',');
    const result = await newaliases(dir, `a: ${targets}\n`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /: 1 aliases,/);
  });
});
