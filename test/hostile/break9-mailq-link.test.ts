// sendmail picks its mode from the name it was started as, so an installed
// link "mailq -> sendmail" prints the queue. The same link to bin/posthorn
// must act as mailq too, including exit 78 on a missing queue folder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand } from '../helpers/process';

test('mailq link to posthorn prints queue', { timeout: 60_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-mailq-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mc = [
    `define(\`QUEUE_DIR', \`${dir}/mqueue')`,
    `define(\`confLOG_FILE', \`${dir}/maillog')`,
    "define(`confDOMAIN_NAME', `mx.posthorn.test')",
    "MAILER(`local')",
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sendmail.mc'), mc);
  const link = path.join(dir, 'mailq');
  fs.symlinkSync(posthornBin, link);

  const missing = await runCommand(link, ['-C', path.join(dir, 'sendmail.mc')]);
  assert.equal(missing.code, 78, missing.stdout + missing.stderr);

  fs.mkdirSync(path.join(dir, 'mqueue'), { mode: 0o700 });
  const empty = await runCommand(link, ['-C', path.join(dir, 'sendmail.mc')]);
  assert.equal(empty.code, 0, empty.stdout + empty.stderr);
  assert.match(empty.stdout, /mqueue is empty\n\t\tTotal requests: 0/);
});
