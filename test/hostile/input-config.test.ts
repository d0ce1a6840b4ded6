// Hostile .mc files: each one must stop the command line with EX_CONFIG (78)
// and a message that names the file, the line and the problem, never a stack
// trace or a hang. The run is bounded so that a hang fails the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, type CommandResult } from '../helpers/process';

const EX_CONFIG = 78;

/** Writes `text` as <dir>/<name>.mc after the common lines and runs `posthorn -C file -bp`. */
async function runMc(name: string, text: string | Buffer, common = true): Promise<CommandResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-input-config-'));
  try {
    const file = path.join(dir, `${name}.mc`);
    // -bp needs an existing queue folder, as sendmail's does.
    fs.mkdirSync(path.join(dir, 'mqueue'));
    const head = common ? `define(\`QUEUE_DIR', \`${dir}/mqueue')\n` : '';
    fs.writeFileSync(file, Buffer.concat([Buffer.from(head), Buffer.from(text)]));
    return await runCommand(process.execPath, [posthornBin, '-C', file, '-bp'], { cwd: dir, timeoutMs: 30_000 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function assertConfigError(result: CommandResult, name: string, line: number, problem: RegExp): void {
  assert.equal(result.signal, null, `killed by ${result.signal}, so it hung:\n${result.stderr}`);
  assert.equal(result.code, EX_CONFIG, result.stderr);
  assert.ok(result.stderr.includes(`${name}.mc:${line}:`), `no file and line in: ${result.stderr}`);
  assert.match(result.stderr, problem);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'stack trace on stderr');
}

const cases: Array<{ name: string; mc: string; line: number; problem: RegExp }> = [
  { name: 'unbalanced', mc: "define(`confMAX_MESSAGE_SIZE', `100)\n", line: 2, problem: /quote .*never closed/ },
  { name: 'negative-size', mc: "define(`confMAX_MESSAGE_SIZE', `-5')\n", line: 2, problem: /MaxMessageSize/ },
  { name: 'huge-size', mc: "define(`confMAX_MESSAGE_SIZE', `99999999999999999999999')\n", line: 2, problem: /MaxMessageSize/ },
  { name: 'bad-unit', mc: "define(`confTO_QUEUERETURN', `1x')\n", line: 2, problem: /Timeout\.queuereturn/ },
  { name: 'negative-time', mc: "define(`confTO_INITIAL', `-5m')\n", line: 2, problem: /Timeout\.initial/ },
  { name: 'port-range', mc: "DAEMON_OPTIONS(`Port=99999, Name=MTA')\n", line: 2, problem: /99999/ },
  { name: 'port-negative', mc: "DAEMON_OPTIONS(`Port=-1, Name=MTA')\n", line: 2, problem: /-1/ },
  { name: 'family', mc: "DAEMON_OPTIONS(`Port=25, Name=MTA, Family=inet9')\n", line: 2, problem: /inet9/ },
  { name: 'address', mc: "DAEMON_OPTIONS(`Addr=999.1.1.1, Name=MTA')\n", line: 2, problem: /999\.1\.1\.1/ },
  { name: 'listen', mc: "DAEMON_OPTIONS(`Port=25, Name=MTA, Listen=-4')\n", line: 2, problem: /Listen/ },
  { name: 'empty-keys', mc: "DAEMON_OPTIONS(`,,,=,=')\n", line: 2, problem: /parameter/ },
  { name: 'feature', mc: "FEATURE(`no_such_feature')\n", line: 2, problem: /no_such_feature/ },
  { name: 'recursive', mc: "define(`A', `A')\ndefine(`confMAX_MESSAGE_SIZE', `A')\n", line: 2, problem: /\bA\b/ },
  { name: 'syscmd', mc: "syscmd(`touch /tmp/posthorn-input-config-pwned')\n", line: 2, problem: /syscmd/ },
  { name: 'ifdef-eof', mc: "ifdef(`x', `define(`confMAX_MESSAGE_SIZE', `100')'\n", line: 2, problem: /ifdef/ },
  { name: 'missing-include', mc: "include(`/nonexistent/posthorn.m4')\n", line: 2, problem: /nonexistent/ },
];

for (const entry of cases) {
  test(`config ${entry.name} is EX_CONFIG`, async () => {
    assertConfigError(await runMc(entry.name, entry.mc), entry.name, entry.line, entry.problem);
  });
}

test('config syscmd runs nothing', async () => {
  const marker = path.join(os.tmpdir(), `posthorn-input-config-${process.pid}`);
  await runMc('syscmd', `syscmd(\`touch ${marker}')\nesyscmd(\`touch ${marker}')\n`);
  assert.equal(fs.existsSync(marker), false);
});

test('config of 10 MB binary is EX_CONFIG', async () => {
  const result = await runMc('binary', crypto.randomBytes(10 * 1024 * 1024), false);
  assert.equal(result.code, EX_CONFIG, result.stderr);
  assert.ok(result.stderr.includes('binary.mc:'), result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m);
  // Control bytes of the file must not reach the terminal as they are.
  assert.doesNotMatch(result.stderr, /\x1b/);
});

test('config error hides escape bytes', async () => {
  const result = await runMc('escape', 'foo \x1b]0;owned\x07\x1b[2J\n');
  assert.equal(result.code, EX_CONFIG, result.stderr);
  assert.doesNotMatch(result.stderr, /[\x00-\x08\x1b]/);
});

test('config of 10 MB comment line loads', async () => {
  const result = await runMc('long-comment', `dnl ${'x'.repeat(10_000_000)}\n`);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /Total requests: 0/);
});

test('config of deep nested quotes loads', async () => {
  const depth = 100_000;
  const mc = `define(\`confDOMAIN_NAME', \`${'`'.repeat(depth)}${"'".repeat(depth + 1)})\n`;
  const result = await runMc('deep-quotes', mc);
  assert.equal(result.signal, null);
  assert.equal(result.code, 0, result.stderr.slice(0, 2000));
});
