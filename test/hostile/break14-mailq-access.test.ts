// mailq and -q run by a user who may not read the queue folder (a 0700 queue
// owned by root, as sendmail's). sendmail 8.17 prints "can not chdir(<dir>/):
// Permission denied" and exits 78 (EX_CONFIG). Posthorn printed "internal
// error" with a stack trace from readdir() and exited 70. `-Q` by such a user
// gets sendmail's "Permission denied (real uid not trusted)" and exit 64
// before any queue folder check. The test runs the commands as the user
// "nobody" (uid 65534), so it needs root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand } from '../helpers/process';

const NOBODY = 65534;

test('mailq as a user who may not enter the queue folder', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to run the command as another user');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-access-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const logPath = path.join(dir, 'maillog');
  fs.writeFileSync(logPath, '', { mode: 0o666 });
  fs.chmodSync(logPath, 0o666);
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(mcPath, `define(\`QUEUE_DIR', \`${queueDir}')\ndefine(\`confLOG_FILE', \`${logPath}')\nMAILER(\`local')\n`, { mode: 0o644 });

  const asNobody = (args: string[]) =>
    runCommand('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, posthornBin, '-C', mcPath, ...args], {
      timeoutMs: 60_000,
    });
  for (const args of [['-bp'], ['-qf']]) {
    const r = await asNobody(args);
    assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`can not chdir\\(${queueDir}/\\): Permission denied`));
    assert.equal(r.code, 78);
  }
  for (const args of [['-Qheld'], ['-Qheld', '-qRbob']]) {
    const r = await asNobody(args);
    assert.match(r.stderr, /Permission denied \(real uid not trusted\)/, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.code, 64);
  }
});
