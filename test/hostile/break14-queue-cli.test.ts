// -Q and -bp on the command line, compared with sendmail 8.17 on the same queue.
//
// 1. `sendmail -Qreason -v` with no -q selector quarantines every normal item
//    (and `sendmail -Q -v` releases nothing: "Processing <dir>:", "No
//    changes"). Posthorn took it for a submission without recipients and
//    stopped with "Recipient names must be specified".
// 2. When no item matches, sendmail prints "<dir>: no matches" and "No
//    changes" only; Posthorn printed "Processing <dir>:" first as well.
// 3. `mailq -qL` marks each lost item with "?" after its id
//    ("6B56QJ0t019476?     601 Sat Dec  5 06:26 ..."); Posthorn left a space.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { posthornBin } from '../helpers/posthorn';
import { runCommand, type CommandResult } from '../helpers/process';

interface Queue {
  queueDir: string;
  run(args: string[], input?: string): Promise<CommandResult>;
}

function makeQueue(t: { after(fn: () => void): void }): Queue {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posthorn-break14-quarantine-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const queueDir = path.join(dir, 'mqueue');
  fs.mkdirSync(queueDir, { mode: 0o700 });
  const mcPath = path.join(dir, 'sendmail.mc');
  fs.writeFileSync(
    mcPath,
    [
      `define(\`QUEUE_DIR', \`${queueDir}')`,
      `define(\`confLOG_FILE', \`${path.join(dir, 'maillog')}')`,
      "define(`confDOMAIN_NAME', `mx.posthorn.test')",
      "LOCAL_DOMAIN(`posthorn.test')",
      "MAILER(`local')",
      '',
    ].join('\n'),
  );
  const run = (args: string[], input?: string): Promise<CommandResult> =>
    runCommand(process.execPath, [posthornBin, '-C', mcPath, ...args], { input, cwd: dir, timeoutMs: 60_000 });
  return { queueDir, run };
}

async function queueTwo(q: Queue): Promise<string[]> {
  for (const user of ['alice', 'bob']) {
    const r = await q.run(['-odq', '-t', '-i'], `To: ${user}@remote.example\nSubject: for ${user}\n\nbody\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  return fs.readdirSync(q.queueDir).filter((n) => n.startsWith('qf')).map((n) => n.slice(2)).sort();
}

test('-Q without a -q selector quarantines every normal item', async (t) => {
  const q = makeQueue(t);
  const ids = await queueTwo(q);

  const release = await q.run(['-Q', '-v']);
  assert.equal(release.code, 0, release.stderr);
  assert.equal(release.stdout, `Processing ${q.queueDir}:\nNo changes\n`);

  const quarantined = await q.run(['-Qheld', '-v']);
  assert.equal(quarantined.code, 0, quarantined.stderr);
  const lines = quarantined.stdout.split('\n');
  assert.equal(lines[0], `Processing ${q.queueDir}:`);
  assert.deepEqual(lines.slice(1, 3).sort(), ids.map((id) => `${id}: Quarantined with "held"`));
  assert.equal(lines[3], '2 changes');
  assert.deepEqual(fs.readdirSync(q.queueDir).filter((n) => /^[qh]f/.test(n)).sort(), ids.map((id) => `hf${id}`));
});

test('-Q with no match prints no Processing line', async (t) => {
  const q = makeQueue(t);
  await queueTwo(q);
  const none = await q.run(['-Qx', '-qRnobody', '-v']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, `${q.queueDir}: no matches\nNo changes\n`);
});

test('mailq -qL marks lost items with a question mark', async (t) => {
  const q = makeQueue(t);
  const [lost] = await queueTwo(q);
  fs.renameSync(path.join(q.queueDir, `qf${lost}`), path.join(q.queueDir, `Qf${lost}`));
  for (const flags of [['-bp', '-qL'], ['-bp', '-qL', '-v']]) {
    const r = await q.run(flags);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${lost}\\? +\\d+ `, 'm'), r.stdout);
  }
  const normal = await q.run(['-bp']);
  assert.doesNotMatch(normal.stdout, /^\S{14}\?/m);
});
