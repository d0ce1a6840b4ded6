// Reproductions for problems of the command line with hostile or odd input:
// -t/-bm input without line ends, and -bt (address test mode) and -bv as an
// administrator uses them, compared with Debian's sendmail 8.17.1.9 where it
// runs. Each test fails while its problem is present.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SubmissionReader } from '../../src/cli/submission-reader';
import { posthornBin } from '../helpers/posthorn';
import { requirePeer } from '../helpers/peers';
import { runCommand, type CommandResult } from '../helpers/process';
import { startSendmail } from '../helpers/sendmail';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Creates a configuration without a daemon, whose run() runs the command line on it. */
function setup(extra: string[] = []): { dir: string; run(args: string[], input?: string | Buffer): Promise<CommandResult> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'mqueue'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'mail'));
  const mcPath = path.join(dir, 'sendmail.mc');
  const lines = [
    `define(\`QUEUE_DIR', \`${path.join(dir, 'mqueue')}')`,
    `define(\`confMAILBOX_DIR', \`${path.join(dir, 'mail')}')`,
    `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "LOCAL_DOMAIN(`posthorn.test')",
    "define(`confQUEUE_LA', `1000')",
    "define(`confREFUSE_LA', `1000')",
    ...extra,
    "MAILER(`local')",
    "MAILER(`smtp')",
  ];
  fs.writeFileSync(mcPath, lines.join('\n') + '\n');
  return {
    dir,
    run: (args, input) => runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], { input, timeoutMs: 60_000 }),
  };
}

test('long body line written in pieces', () => {
  const reader = new SubmissionReader(true, 32768);
  const head = reader.push(Buffer.from('To: bob@posthorn.test\nSubject: long\n\n'));
  assert.deepEqual(head, []);
  // Before the fix nothing came out until the LF: a 600 MB line made -t exit 75
  // with "Cannot create a string longer than 0x1fffffe8 characters".
  const piece = Buffer.concat(reader.push(Buffer.alloc(1024 * 1024, 'a')));
  assert.ok(piece.length >= 1024 * 1024 - 1, `written so far: ${piece.length} bytes`);
  const rest = Buffer.concat([...reader.push(Buffer.from('b\r\nnext\n')), ...reader.finish()]);
  assert.equal(Buffer.concat([piece, rest]).toString('latin1'), `${'a'.repeat(1024 * 1024)}b\r\nnext\r\n`);
});

test('overlong header line rejected early', () => {
  const reader = new SubmissionReader(true, 32768);
  reader.push(Buffer.from('To: bob@posthorn.test\nX-Long: '));
  reader.push(Buffer.alloc(1024 * 1024, 'a'));
  assert.equal(reader.headersTooLong, true);
  const body = Buffer.concat([...reader.push(Buffer.from('aaa\nSubject: x\n\nbody\n')), ...reader.finish()]);
  assert.equal(body.toString('latin1'), 'body\r\n');
  assert.deepEqual(reader.headers, ['To: bob@posthorn.test', 'Subject: x']);
});

test('3 MB line reaches mailbox whole', { timeout: 60_000 }, async () => {
  const s = setup();
  const line = 'z'.repeat(3 * 1024 * 1024);
  const run = await s.run(['-odi', 'bob@posthorn.test'], `Subject: long\n\n${line}`);
  assert.equal(run.code, 0, run.stderr);
  const mbox = fs.readFileSync(path.join(s.dir, 'mail', 'bob'), 'latin1');
  assert.ok(mbox.includes(`\n\n${line}\n`), 'the long line is in the mailbox unchanged');
});

test('-bt expands ${j}, $w, $m, $k', { timeout: 60_000 }, async (t) => {
  const s = setup();
  const identity = await s.run(['-d0.1', '-bv', 'postmaster']);
  const macro = (letter: string): string => new RegExp(`\\$${letter} = (.*)$`, 'm').exec(identity.stdout)?.[1] ?? '?';
  const run = await s.run(['-bt'], '${j}\n$w\n$m\n$k\n$j\n');
  assert.equal(run.code, 0, run.stderr);
  const answers = run.stdout.split('\n').slice(2, 7).map((l) => l.replace(/^> /, ''));
  // Before the fix: "Undefined" for all but $j.
  assert.deepEqual(answers, ['mx.posthorn.test', 'mx', 'posthorn.test', macro('k'), 'mx.posthorn.test']);
  assert.deepEqual([macro('j'), macro('w'), macro('m')], ['mx.posthorn.test', 'mx', 'posthorn.test']);

  const bin = requirePeer(t, 'sendmail');
  if (bin === undefined) return;
  const sendmail = await startSendmail({ bin });
  t.after(() => sendmail.stop());
  const theirs = await sendmail.run(['-bt'], '${j}\n$w\n$m\n');
  assert.deepEqual(theirs.stdout.split('\n').slice(2, 5), ['> mx.sendmail.test', '> mx', '> sendmail.test']);
});

test('-bt rejects an overlong line', { timeout: 60_000 }, async () => {
  const s = setup();
  // Before the fix the line was held whole and echoed; at 700 MB Node's
  // readline died with "RangeError: Invalid string length" and a stack trace.
  const run = await s.run(['-bt'], `/parse ${'a'.repeat(100_000)}@example.com\n$j\n`);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  assert.match(run.stdout, /^> Input line too long \(more than \d+ bytes\): ignored$/m);
  assert.match(run.stdout, /^> mx\.posthorn\.test$/m);
  assert.ok(run.stdout.length < 1000, `output of ${run.stdout.length} bytes`);
});

test('-bt escapes control characters', { timeout: 60_000 }, async () => {
  // Input must not drive the terminal. sendmail's address parser drops control characters, and Posthorn shows them as ^X.
  const s = setup();
  const run = await s.run(['-bt'], '\x1b[2J\x07/bogus\n');
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stdout, /[\x00-\x08\x0b-\x1f]/);
  assert.match(run.stdout, /"\^\[\[2J\^G\/bogus"/);
});

test('-bt /parse lowercases local users', { timeout: 60_000 }, async () => {
  // sendmail prints "mailer local, user bob" for /parse Bob, as Posthorn's -bv does.
  const s = setup();
  const run = await s.run(['-bt'], '/parse Bob\n/parse Bob@POSTHORN.test\n');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.stdout.split('\n').filter((l) => l.startsWith('mailer ')), ['mailer local, user bob', 'mailer local, user bob']);
});

test('-bv without address exits 64', { timeout: 60_000 }, async () => {
  // sendmail 8.17 prints "Recipient names must be specified" and exits 64. Before the fix Posthorn printed nothing and exited 0.
  const s = setup();
  const run = await s.run(['-bv']);
  assert.equal(run.code, 64);
  assert.match(run.stderr, /Recipient names must be specified/);
});
