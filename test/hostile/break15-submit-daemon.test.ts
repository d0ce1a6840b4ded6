// Reproductions for problems of the submission by a user who may not write
// the queue (`su nobody -c 'sendmail -t -i'`), which goes to the daemon over
// SMTP (src/cli/submit-to-daemon.ts). Found by following the README as a new
// administrator. Each test fails while its problem is present.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { runCommand, waitFor } from '../helpers/process';

/** The uid and gid of "nobody" on Debian. */
const NOBODY = 65534;
const MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function needsRoot(t: { skip(message: string): void }): boolean {
  if (process.getuid?.() === 0) return false;
  t.skip('needs root to run the submission as another user');
  return true;
}

/** Creates a temporary folder owned by the user "nobody", given as TMPDIR, so that only this test's leftovers appear there. */
function privateTmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-tmp-'));
  fs.chownSync(dir, NOBODY, NOBODY);
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Makes the configuration readable for every user, while the queue (0700) stays root's. */
function openToNobody(ph: Posthorn): void {
  fs.chmodSync(ph.dir, 0o755);
  fs.chmodSync(ph.mcPath, 0o644);
}

function submitAsNobody(mcPath: string, args: string[], input: string, tmp: string) {
  return runCommand(process.execPath, [MAIN, '-C', mcPath, ...args], {
    input,
    cwd: '/',
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, TMPDIR: tmp },
  });
}

test('452 too many recipients: each delivered once', { timeout: 60_000 }, async (t) => {
  // The daemon takes 5 recipients per message, and the message names 12.
  if (needsRoot(t)) return;
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=background', '-O', 'MaxRecipientsPerMessage=5'] });
  t.after(() => ph.stop());
  openToNobody(ph);
  const tmp = privateTmp();
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const users = Array.from({ length: 12 }, (_, i) => `u${i}`);
  const message = `To: ${users.map((u) => `${u}@posthorn.test`).join(', ')}\nSubject: many\n\nOrder 42 is ready.\n`;

  const run = await submitAsNobody(ph.mcPath, ['-t', '-i'], message, tmp);
  // Before the fix: exit 75 with "452 4.5.3 Too many recipients" for u5..u11,
  // after u0..u4 had the message: a caller that tries again sends it twice.
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  for (const user of users) {
    const mbox = await ph.waitForMailbox(user, 'Order 42 is ready.');
    assert.equal(mbox.split('Order 42 is ready.').length - 1, 1, `${user} got the message once`);
  }
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test('daemon rejection: stderr shows its reply', { timeout: 60_000 }, async (t) => {
  if (needsRoot(t)) return;
  // The daemon takes 600 bytes (SIZE= over MAIL); the client's own configuration sets no limit.
  const ph = await startPosthorn({ mc: baseMc({ extra: ["define(`confMAX_MESSAGE_SIZE', `600')"] }), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  openToNobody(ph);
  const clientMc = path.join(ph.dir, 'client.mc');
  fs.writeFileSync(clientMc, fs.readFileSync(ph.mcPath, 'utf8').replace("`confMAX_MESSAGE_SIZE', `600'", "`confMAX_MESSAGE_SIZE', `0'"), { mode: 0o644 });
  const tmp = privateTmp();
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const run = await submitAsNobody(clientMc, ['-t', '-i'], `To: alice@posthorn.test\nSubject: big\n\n${'x'.repeat(700)}\n`, tmp);
  assert.equal(run.code, 69, run.stderr);
  // Before the fix: "alice@posthorn.test... Service unavailable", without the reason.
  assert.match(run.stderr, /^alice@posthorn\.test\.\.\. 552 5\.\d\.\d+ .*size/im);
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test('SIGTERM during input: no folder left', { timeout: 60_000 }, async (t) => {
  if (needsRoot(t)) return;
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  openToNobody(ph);
  const tmp = privateTmp();
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const child = spawn(process.execPath, [MAIN, '-C', ph.mcPath, '-t', '-i'], {
    cwd: '/',
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGTERM' ? 143 : null))));
  child.stdin.write('To: alice@posthorn.test\nSubject: half\n\nthe first half\n');
  await waitFor('the submission folder', () => fs.readdirSync(tmp).some((n) => n.startsWith('posthorn-submit-')), 15_000);
  child.kill('SIGTERM');
  assert.equal(await exited, 143);
  child.stdin.destroy();
  // Before the fix: an empty posthorn-submit-XXXXXX folder stayed behind.
  assert.deepEqual(fs.readdirSync(tmp), []);
  assert.equal(ph.mailbox('alice'), '');
});

test('SIGTERM during SMTP: no copy left', { timeout: 60_000 }, async (t) => {
  if (needsRoot(t)) return;
  // A "daemon" that takes the connection and never greets.
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mcPath, baseMc().replaceAll('@QUEUE_DIR@', queueDir).replaceAll('@MAILBOX_DIR@', path.join(dir, 'mail'))
    .replaceAll('@LOG_FILE@', path.join(dir, 'maillog')).replaceAll('@DIR@', dir).replaceAll('@PORT@', String(port)).replaceAll('@ADDR@', '127.0.0.1'));
  fs.chmodSync(mcPath, 0o644);
  const tmp = privateTmp();
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const connected = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
  const child = spawn(process.execPath, [MAIN, '-C', mcPath, '-t', '-i'], {
    cwd: '/',
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGTERM' ? 143 : null))));
  child.stdin.end('To: alice@posthorn.test\nSubject: secret\n\nthe whole message\n');
  await connected;
  child.kill('SIGTERM');
  assert.equal(await exited, 143);
  // Before the fix: posthorn-submit-XXXXXX/ kept qf and df, the whole message.
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test('untrusted -f: X-Authentication-Warning added', { timeout: 60_000 }, async (t) => {
  if (needsRoot(t)) return;
  const mc = baseMc({ extra: ["define(`confPRIVACY_FLAGS', `authwarnings')"] });
  const ph = await startPosthorn({ mc, args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  openToNobody(ph);
  const tmp = privateTmp();
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const forged = await submitAsNobody(ph.mcPath, ['-t', '-i', '-f', 'boss@bank.example'], 'To: alice@posthorn.test\nSubject: forged\n\nPay now.\n', tmp);
  assert.equal(forged.code, 0, forged.stderr);
  const mbox = await ph.waitForMailbox('alice', 'Pay now.');
  // Debian's sendmail 8.17.1.9, run as the user "nobody" with -f, writes this line (checked with the binary).
  assert.match(mbox, /^X-Authentication-Warning: mx\.posthorn\.test: nobody set sender to boss@bank\.example using -f$/m);

  // root is trusted, and -f with one's own name warns of nothing.
  const own = await submitAsNobody(ph.mcPath, ['-t', '-i', '-f', 'nobody'], 'To: bob@posthorn.test\nSubject: own\n\nMine.\n', tmp);
  assert.equal(own.code, 0, own.stderr);
  const byRoot = await ph.run(['-f', 'boss@bank.example', '-odi', 'carol@posthorn.test'], 'Subject: root\n\nFrom root.\n');
  assert.equal(byRoot.code, 0, byRoot.stderr);
  assert.doesNotMatch(await ph.waitForMailbox('bob', 'Mine.'), /^X-Authentication-Warning:/m);
  assert.doesNotMatch(await ph.waitForMailbox('carol', 'From root.'), /^X-Authentication-Warning:/m);
});

test('unwritable TMPDIR: exit 75, no stack', { timeout: 60_000 }, async (t) => {
  if (needsRoot(t)) return;
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  openToNobody(ph);
  const closed = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-closed-'));
  t.after(() => fs.rmSync(closed, { recursive: true, force: true }));
  fs.chmodSync(closed, 0o700);

  const run = await submitAsNobody(ph.mcPath, ['-t', '-i'], 'To: alice@posthorn.test\nSubject: t\n\nbody\n', closed);
  // Before the fix: "posthorn: internal error: Error: EACCES ... at Object.mkdtempSync" and exit 70.
  assert.equal(run.code, 75, run.stderr);
  assert.doesNotMatch(run.stderr, /internal error|\n\s+at /);
  assert.match(run.stderr, /^posthorn: cannot create a temporary folder in .*; the message was not sent$/m);
});

test('signal during private commit: no exit 0', { timeout: 60_000 }, async (t) => {
  // submitToDaemon() commits the message to its private folder first. A
  // signal during that commit ended the process with 0 before the message
  // went to the daemon. This child process commits with final: false, as
  // submitToDaemon() does, and gets SIGTERM in the middle of the commit.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break15-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const queueDir = path.join(dir, 'mqueue');
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mcPath, `define(\`QUEUE_DIR', \`${queueDir}')\ndefine(\`confDOMAIN_NAME', \`mx.posthorn.test')\nMAILER(\`smtp')\n`);
  const dist = path.join(__dirname, '..', '..', 'src');
  const script = path.join(dir, 'commit-signal.js');
  fs.writeFileSync(script, `
const { Readable } = require('node:stream');
const { loadConfig } = require(${JSON.stringify(path.join(dist, 'config', 'load.js'))});
const { Logger } = require(${JSON.stringify(path.join(dist, 'log', 'logger.js'))});
const { QueueStore } = require(${JSON.stringify(path.join(dist, 'queue', 'store.js'))});
const { submitMessage } = require(${JSON.stringify(path.join(dist, 'cli', 'submit.js'))});
const config = { ...loadConfig({ file: ${JSON.stringify(mcPath)}, overrides: [] }), deliveryMode: 'queueonly', superSafe: 'false' };
const logger = new Logger([], 3);
const store = new QueueStore({ dir: config.queueDirectory, superSafe: 'false', logger });
const commit = store.commit.bind(store);
store.commit = async (item, opts) => {
  process.kill(process.pid, 'SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 200));
  return commit(item, opts);
};
store.init({ recover: false }).then(() => submitMessage({
  config, store, logger, input: Readable.from([Buffer.from('Subject: x\\n\\nbody\\n')]),
  recipients: ['bob@posthorn.test'], readRecipients: false, ignoreDots: true, final: false,
})).then(() => process.exit(3));
`);
  const run = await runCommand(process.execPath, [script]);
  assert.equal(run.stderr, '');
  // Before the fix: code 0, and the caller took the message as sent.
  assert.notEqual(run.code, 0);
  assert.ok(run.signal === 'SIGTERM' || run.code === 143, `code ${run.code}, signal ${run.signal}`);
});
