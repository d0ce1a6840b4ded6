// `posthorn -bs` run by a user who may not write the queue, as mutt and other
// mail programs call `sendmail -bs` as the user. sendmail's mail submission
// program relays such a session to the daemon, so posthorn passes it through
// to the daemon's listener. Before, it ended with exit 78 ("can not
// chdir(<queue>): Permission denied") and no greeting.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { baseMc, startPosthorn, type Posthorn } from '../helpers/posthorn';
import { runCommand, runStaged } from '../helpers/process';

const NOBODY = 65534;
const MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** Starts a daemon whose configuration the user nobody can read, or skips the test when not run as root. */
async function daemonForNobody(t: TestContext): Promise<Posthorn | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to run the session as another user');
    return undefined;
  }
  const ph = await startPosthorn({ mc: baseMc(), args: ['-O', 'DeliveryMode=background'] });
  t.after(() => ph.stop());
  fs.chmodSync(ph.dir, 0o755);
  fs.chmodSync(ph.mcPath, 0o644);
  return ph;
}

test('-bs as nobody relays', { timeout: 60_000 }, async (t) => {
  const ph = await daemonForNobody(t);
  if (ph === undefined) return;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break16-tmp-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.chownSync(tmp, NOBODY, NOBODY);

  // A client that waits for each reply: the daemon, as sendmail, rejects commands pipelined behind EHLO.
  const steps: Array<[string, RegExp]> = [
    ['', /^220 /m],
    ['EHLO client\r\n', /^250 HELP\r$/m],
    ['MAIL FROM:<nobody@posthorn.test>\r\nRCPT TO:<alice@posthorn.test>\r\nDATA\r\n', /^354 /m],
    ['Subject: bs\r\n\r\nsent with -bs\r\n.\r\n', /^250 2\.0\.0 \S+ Message accepted for delivery\r$/m],
    ['QUIT\r\n', /^221 /m],
  ];
  const run = await runStaged(process.execPath, [MAIN, '-C', ph.mcPath, '-bs'], steps, {
    cwd: '/',
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, TMPDIR: tmp },
  });
  assert.match(run.stdout, /^220 /, run.stderr);
  assert.match(run.stdout, /^221 /m, run.stderr);
  assert.equal(run.code, 0, run.stderr);
  await ph.waitForMailbox('alice', 'sent with -bs');
  assert.deepEqual(fs.readdirSync(tmp), []);
});

test('-bs as nobody without a daemon', { timeout: 60_000 }, async (t) => {
  const ph = await daemonForNobody(t);
  if (ph === undefined) return;
  await ph.kill('SIGTERM');
  const run = await runCommand(process.execPath, [MAIN, '-C', ph.mcPath, '-bs'], { input: 'QUIT\r\n', cwd: '/', uid: NOBODY, gid: NOBODY });
  assert.equal(run.code, 75);
  assert.match(run.stdout, /^421 4\.3\.2 mx\.posthorn\.test the mail daemon at 127\.0\.0\.1 port \d+ cannot be reached \(.*\); try again later\r\n$/);
});
